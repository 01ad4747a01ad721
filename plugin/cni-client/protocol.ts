// Where the thin client finds the agent's socket, and the few pieces the loader's client and
// the bundle share (stdin, the handoff between them). Node built-ins only: the thin client that
// dist/podlegs runs before loading anything else is built from this (the wire format is
// overlay/agent/cni-protocol.ts).
import * as fs from 'fs';
import { DEFAULT_AGENT_SOCKET } from '../../overlay/agent/cni-protocol';

/** Node-level defaults for a Multus delegate call, whose stdin is only a NAD's config. */
export const NODE_CONFIG_DEFAULT = '/etc/cni/net.d/podlegs.d/node.json';
/** What loadConf accepts on stdin; one byte more is read so that it can say "too large". */
export const MAX_STDIN = 1 << 20;
/** How long the client waits for the agent's answer (override: PODLEGS_AGENT_TIMEOUT_MS). */
export const DEFAULT_TIMEOUT_MS = 60_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A NAD's config handed over by Multus (one network, with "vni" or "trunk"), not a podlegs entry. */
export const isDelegateConf = (c: Obj): boolean => c.vni !== undefined || c.trunk !== undefined;

/** The node config file a delegate call takes its node-level fields from. */
export const nodeConfigFile = (env: NodeJS.ProcessEnv): string => env.PODLEGS_NODE_CONFIG ?? NODE_CONFIG_DEFAULT;

const socketIn = (c: unknown): string | undefined | null => {
  if (!isObj(c) || c.agent === undefined) return undefined;
  const s = isObj(c.agent) ? c.agent.socket : null;
  if (s === undefined) return undefined;
  return typeof s === 'string' && s.startsWith('/') && !s.includes('\0') ? s : null;
};

/**
 * The agent socket for this call: "agent.socket" of the podlegs entry on stdin; for a Multus
 * delegate call, that of the node config file; else the default. null: stdin or the field
 * is unusable, so the call runs in-process, where loadConf says what is wrong.
 */
export function agentSocketFor(c: unknown, env: NodeJS.ProcessEnv): string | null {
  if (!isObj(c)) return null;
  const own = socketIn(c);
  if (own !== undefined || !isDelegateConf(c)) return own ?? DEFAULT_AGENT_SOCKET;
  let node: unknown;
  try {
    node = JSON.parse(fs.readFileSync(nodeConfigFile(env), 'utf8'));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? DEFAULT_AGENT_SOCKET : null;
  }
  const fromNode = socketIn(node);
  return fromNode === undefined ? DEFAULT_AGENT_SOCKET : fromNode;
}

/** The loader hands the stdin it read to the bundle when the agent did not take the call. */
const HANDOFF = Symbol.for('podlegs.cni-stdin');
export function handOver(stdin: string): void { (globalThis as Record<symbol, unknown>)[HANDOFF] = stdin; }
export function takeHandoff(): string | undefined {
  const g = globalThis as Record<symbol, unknown>;
  const s = g[HANDOFF];
  delete g[HANDOFF];
  return typeof s === 'string' ? s : undefined;
}

/**
 * Reads stdin up to one byte past MAX_STDIN (the rest is read and dropped, loadConf says it is
 * too large). Synchronously first: process.stdin builds a stream (and loads net/tty for it),
 * ~4.5 ms of every CNI call; a runtime's stdin is a pipe or file that a blocking read drains
 * at once. A stdin that is non-blocking (EAGAIN) or refuses read(2) continues as a stream,
 * after what was read already.
 */
export function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  const keep = (c: Buffer): void => {
    if (size <= MAX_STDIN) chunks.push(c);
    size += c.length;
  };
  const text = (): string => Buffer.concat(chunks).subarray(0, MAX_STDIN + 1).toString();
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(65536);
      const n = fs.readSync(0, buf, 0, buf.length, null);
      if (n === 0) return Promise.resolve(text());
      keep(buf.subarray(0, n));
    }
  } catch {
    // EAGAIN (non-blocking pipe), EISDIR, EBADF...: the stream below reads (or reports) it as before.
  }
  return new Promise((resolve, reject) => {
    process.stdin.on('data', keep);
    process.stdin.on('end', () => resolve(text()));
    process.stdin.on('error', reject);
  });
}

/**
 * Writes the answer to stdout and exits at once: a pipe or file takes a blocking write in
 * full, and exiting here skips the event loop's wind-down (the thin client has nothing left
 * to do). A non-blocking stdout (EAGAIN) or one that fails gets the rest through the stream,
 * and the process exits when node is done with it, as before.
 */
export function answerAndExit(stdout: string, exitCode: number): void {
  const buf = Buffer.from(stdout);
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(1, buf, off, buf.length - off);
  } catch {
    process.stdout.write(buf.subarray(off));
    process.exitCode = exitCode;
    return;
  }
  process.exit(exitCode);
}

/** A runtime sets CNI_COMMAND; one that set other CNI_* variables but not it gets a CNI error, not the CLI. */
export const isCniCall = (env: NodeJS.ProcessEnv): boolean => Object.keys(env).some((k) => k.startsWith('CNI_'));
