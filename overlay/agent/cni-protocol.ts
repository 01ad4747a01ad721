// The protocol of the agent's CNI socket, shared by the agent (cni-server.ts) and the
// plugin's thin client (plugin/cni-client). A leaf module: the thin client is built from it.
//
// One connection per call. The client sends one JSON line, the agent answers one JSON line
// and closes:
//   → {"podlegs":1,"env":{...the caller's whole environment...},"stdin":"..."}
//   ← {"podlegs":1,"exitCode":0,"stdout":"..."}     the call ran: print stdout, exit with exitCode
//   ← {"podlegs":1,"refused":"why"}                 nothing ran (another protocol version, a
//                                                   malformed request): run it in-process
// The whole environment is sent, as multus-shim sends its daemon: the agent runs
// runCni(env, stdin) on it, so IPAM plugins get exactly the caller's environment, as they
// would in-process.

export const PROTOCOL = 1;
export const DEFAULT_AGENT_SOCKET = '/run/podlegs/agent.sock';
/** A request is stdin (≤ 1 MiB) plus the environment; an answer is a result. Both stay well below. */
export const MAX_MESSAGE = 4 << 20;

export interface CniRequest { podlegs: number; env: Record<string, string>; stdin: string }
export interface CniAnswer { podlegs: number; exitCode: number; stdout: string }
export interface CniRefusal { podlegs: number; refused: string }
export interface CniOutput { exitCode: number; stdout: string }
