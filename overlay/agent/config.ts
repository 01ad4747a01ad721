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
//     "debounceMs": 10           // events within this window make one reconcile; 0 to 5000
//   }
//
// Every field is optional; unknown fields are errors, so a typo does not silently
// fall back to a default.
import { parseHostPort } from './http';

export interface AgentConf { metricsAddress: string; resyncSeconds: number; gracePeriodSeconds: number; debounceMs: number }

export const AGENT_DEFAULTS: Readonly<AgentConf> = { metricsAddress: '127.0.0.1:9750', resyncSeconds: 10, gracePeriodSeconds: 30, debounceMs: 10 };

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
    try { parseHostPort(o.metricsAddress); } catch (e) { throw new Error(`agent.metricsAddress ${(e as Error).message}`); }
    metricsAddress = o.metricsAddress;
  }
  return {
    metricsAddress,
    resyncSeconds: num(o, 'resyncSeconds', 0.1, 3600),
    gracePeriodSeconds: num(o, 'gracePeriodSeconds', 0, 86400),
    debounceMs: num(o, 'debounceMs', 0, 5000),
  };
}
