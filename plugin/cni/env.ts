// The CNI_* environment, validated per command before anything is touched.
import { CniError, Code } from './errors';

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  path: string[];
  args: Map<string, string>;
  /** The caller's whole environment (the runtime's, or forwarded by the thin client): IPAM plugins get it. */
  environ: NodeJS.ProcessEnv;
}

const envErr = (msg: string): CniError => new CniError(Code.InvalidEnv, msg);

/**
 * CNI_ARGS: "K1=V1;K2=V2" with plain keys and exactly one "=" per pair, as libcni's LoadArgs
 * reads it ("K8S_POD_NAME=a=b" is refused there too); anything else is refused.
 */
export function parseCniArgs(raw: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!raw) return out;
  if (raw.length > 4096) throw envErr('CNI_ARGS is longer than 4096 characters');
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const kv = pair.split('=');
    if (kv.length !== 2 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(kv[0])) {
      throw envErr(`CNI_ARGS is malformed at "${pair.slice(0, 40)}": expected KEY=VALUE pairs (one "=" each) separated by ";"`);
    }
    if (/[\0\n]/.test(pair)) throw envErr(`CNI_ARGS value of ${kv[0]} contains control characters`);
    out.set(kv[0], kv[1]);
  }
  return out;
}

/** DEL works from the recorded state: CNI_ARGS only names the pod in its log lines. */
function argsForLog(raw: string | undefined): Map<string, string> {
  try {
    return parseCniArgs(raw);
  } catch {
    return new Map();
  }
}

export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command)) throw envErr(`CNI_COMMAND "${command}" is not one of ${COMMANDS.join(', ')}`);
  const perContainer = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw envErr(`${name} is required for ${command}`);
    return v;
  };
  const containerId = perContainer ? need('CNI_CONTAINERID') : env.CNI_CONTAINERID ?? '';
  // Container IDs name state and registry files: 128 leaves room within NAME_MAX (255).
  if (perContainer && containerId.length > 128) throw envErr(`CNI_CONTAINERID is ${containerId.length} characters long; at most 128 are supported`);
  if (perContainer && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
    throw envErr('CNI_CONTAINERID must start with a letter or digit and contain only letters, digits, "_", "." and "-"');
  }
  const netns = command === 'ADD' || command === 'CHECK' ? need('CNI_NETNS') : env.CNI_NETNS ?? '';
  // DEL never enters the netns (the state file records it): a malformed one cannot stop a DEL.
  if (netns && command !== 'DEL' && !netns.startsWith('/')) throw envErr(`CNI_NETNS must be an absolute path, got "${netns}"`);
  const ifname = perContainer ? need('CNI_IFNAME') : env.CNI_IFNAME ?? '';
  if (ifname && (ifname.length > 15 || /[/\s:]/.test(ifname) || ifname === '.' || ifname === '..')) {
    throw envErr(`CNI_IFNAME "${ifname}" is not a valid interface name`);
  }
  const path = (env.CNI_PATH ?? '').split(':').filter(Boolean);
  if (perContainer && command !== 'CHECK' && path.length === 0) throw envErr(`CNI_PATH is required for ${command}`);
  const args = command === 'DEL' ? argsForLog(env.CNI_ARGS) : parseCniArgs(env.CNI_ARGS);
  return { command: command as Command, containerId, netns, ifname, path, args, environ: env };
}
