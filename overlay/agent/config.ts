// The "agent" section of the agent's config file (`podlegs agent --config FILE`):
//
//   "agent": {
//     "metricsAddress": "127.0.0.1:9750", // /metrics and /healthz; host:port or [v6]:port.
//                                         // Loopback by default: inside the node's netns.
//     "resyncSeconds": 10,       // full resync period: repairs drift (an FDB entry deleted
//                                // by hand is back within this); 0.1 to 3600
//     "gracePeriodSeconds": 30,  // a segment without local legs is removed after this long
//                                // (covers the gap between an ADD creating it and plugging
//                                // its leg in); 0 to 86400
//     "debounceMs": 10,          // events within this window make one reconcile; 0 to 5000
//     "socket": "/run/podlegs/agent.sock"  // the CNI socket (mode 0600) the plugin's thin client
//                                // calls; absolute path. The plugin entry names the same path.
//   }
//
// Every field is optional; unknown fields are errors, so a typo does not silently
// fall back to a default.
import { DEFAULT_AGENT_SOCKET } from './cni-protocol';
import { parseHostPort } from '../values';

export interface AgentConf { metricsAddress: string; resyncSeconds: number; gracePeriodSeconds: number; debounceMs: number; socket: string }

export const AGENT_DEFAULTS: Readonly<AgentConf> = { metricsAddress: '127.0.0.1:9750', resyncSeconds: 10, gracePeriodSeconds: 30, debounceMs: 10, socket: DEFAULT_AGENT_SOCKET };

function num(o: Record<string, unknown>, key: keyof AgentConf, min: number, max: number): number {
  const v = o[key];
  if (v === undefined) return AGENT_DEFAULTS[key] as number;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new Error(`agent.${key} must be a number from ${min} to ${max}, got ${JSON.stringify(v)?.slice(0, 40)}`);
  }
  return v;
}

export function parseAgentConf(v: unknown): AgentConf {
  if (v === undefined) return { ...AGENT_DEFAULTS };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('agent must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in AGENT_DEFAULTS)) throw new Error(`agent.${k} is not a known field (known: ${Object.keys(AGENT_DEFAULTS).join(', ')})`);
  }
  let metricsAddress = AGENT_DEFAULTS.metricsAddress;
  if (o.metricsAddress !== undefined) {
    if (typeof o.metricsAddress !== 'string') throw new Error('agent.metricsAddress must be a string host:port');
    const hp = parseHostPort(o.metricsAddress);
    if (typeof hp === 'string') throw new Error(`agent.metricsAddress ${hp}`);
    metricsAddress = o.metricsAddress;
  }
  let socket = AGENT_DEFAULTS.socket;
  if (o.socket !== undefined) {
    // sun_path holds 108 bytes with its terminating NUL.
    if (typeof o.socket !== 'string' || !o.socket.startsWith('/') || o.socket.includes('\0') || Buffer.byteLength(o.socket) > 107) {
      throw new Error(`agent.socket must be an absolute path of at most 107 bytes, got ${JSON.stringify(o.socket)?.slice(0, 120)}`);
    }
    socket = o.socket;
  }
  return {
    metricsAddress,
    socket,
    resyncSeconds: num(o, 'resyncSeconds', 0.1, 3600),
    gracePeriodSeconds: num(o, 'gracePeriodSeconds', 0, 86400),
    debounceMs: num(o, 'debounceMs', 0, 5000),
  };
}
