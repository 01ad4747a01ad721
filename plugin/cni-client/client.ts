// The thin client: hands a CNI call to the node agent over its unix socket and returns the
// agent's answer unchanged. fs and podlegs' small addon only (net as a fallback): dist/podlegs
// runs this before it loads the bundle, so a call the agent serves never loads netlink, winston
// or the bundle.
//
//   no socket / connection refused (any connect error) → undefined: run in-process
//   the agent refused the request (other protocol)     → undefined: run in-process
//   the agent closed or hung before answering          → CNI error 11 (try again later);
//     the runtime's DEL then works from the recorded state (in-process when the agent is gone)
import * as fs from 'fs';
import { CniOutput, CniRequest, MAX_MESSAGE, PROTOCOL } from '../../overlay/agent/cni-protocol';
import { loadAddonFrom } from '../../overlay/kernel/addon';
import { agentSocketFor, DEFAULT_TIMEOUT_MS } from './protocol';

const TRY_AGAIN_LATER = 11;

function timeoutMs(env: NodeJS.ProcessEnv): number {
  const v = Number(env.PODLEGS_AGENT_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

function tryAgain(cniVersion: string, msg: string): CniOutput {
  return { exitCode: 1, stdout: `${JSON.stringify({ cniVersion, code: TRY_AGAIN_LATER, msg })}\n` };
}

/** What a connection tells the call: connected, bytes, gone (after connecting), or never connected. */
export interface ConnEvents { connected(): void; data(b: Buffer): void; closed(): void; failed(): void }
export interface Conn { write(s: string): void; close(): void }
/** Opens a unix socket connection; exactly one of failed() or connected() follows, and after connected() at most one closed(). */
export type Dial = (socket: string, ev: ConnEvents) => Conn;

/** Through net.Socket: ~5 ms of every call is loading and first running net and its streams. */
export const dialNet: Dial = (socket, ev) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('net') as typeof import('net');
  const c = net.connect({ path: socket });
  let connected = false;
  c.on('connect', () => { connected = true; ev.connected(); });
  c.on('data', (d: Buffer) => ev.data(d));
  c.on('error', () => undefined); // 'close' follows and says which
  c.on('close', () => (connected ? ev.closed() : ev.failed()));
  return { write: (s) => { c.write(s); }, close: () => { c.destroy(); } };
};

interface AgentAddon {
  agentConnect(path: string, timeoutMs: number): number;
  agentExchange(fd: number, request: string, timeoutMs: number, max: number): [number, Buffer];
  agentClose(fd: number): void;
}

/**
 * Through podlegs' own addon (native/netns.c): blocking connect, send and read, none of node's
 * net and stream modules loaded (that was ~5-7 ms of every call). Blocking is fine here: the
 * process has nothing else to do; `limitMs` bounds each call. undefined without the addon (or
 * one built before these functions): then dialNet.
 */
export function nativeDial(limitMs: number, dir = __dirname): Dial | undefined {
  let a: Partial<AgentAddon> | undefined;
  try {
    a = loadAddonFrom<Partial<AgentAddon>>(dir);
  } catch {
    return undefined;
  }
  if (!a || typeof a.agentConnect !== 'function' || typeof a.agentExchange !== 'function' || typeof a.agentClose !== 'function') return undefined;
  const addon = a as AgentAddon;
  return (socket, ev) => {
    const fd = addon.agentConnect(socket, limitMs);
    if (fd < 0) {
      process.nextTick(() => ev.failed());
      return { write: () => undefined, close: () => undefined };
    }
    let open = true;
    const close = (): void => { if (open) { open = false; addon.agentClose(fd); } };
    process.nextTick(() => ev.connected());
    return {
      write: (s) => {
        if (!open) return;
        const [status, data] = addon.agentExchange(fd, s, limitMs, MAX_MESSAGE);
        if (data.length) ev.data(data); // a whole line (0), or what came before a close (1) or past max (3)
        if (status === 1) ev.closed();
        // 2, no line within limitMs: callAgent's timer, overdue by now, answers.
      },
      close,
    };
  };
}

/** Sends the call to the agent at `socket`; undefined when it did not take it (run in-process). */
export function callAgent(socket: string, env: NodeJS.ProcessEnv, stdin: string, cniVersion: string, transport?: Dial): Promise<CniOutput | undefined> {
  return new Promise((resolve) => {
    const limit = timeoutMs(env);
    const dial = transport ?? nativeDial(limit) ?? dialNet;
    let settled = false;
    const chunks: Buffer[] = [];
    let size = 0;
    let c: Conn | undefined;
    const done = (v: CniOutput | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c?.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(tryAgain(cniVersion,
      `the podlegs agent at ${socket} did not answer within ${limit / 1000} s (hung or overloaded); try again later`)), limit);
    // Before the connection: nothing was sent, the call can run in-process.
    c = dial(socket, {
      connected: () => {
        const request: CniRequest = { podlegs: PROTOCOL, env: env as Record<string, string>, stdin };
        c?.write(`${JSON.stringify(request)}\n`);
      },
      data: (d) => {
        const nl = d.indexOf(10);
        chunks.push(nl < 0 ? d : d.subarray(0, nl));
        size += nl < 0 ? d.length : nl;
        if (nl < 0) {
          if (size > MAX_MESSAGE) done(tryAgain(cniVersion, `the podlegs agent at ${socket} sent an answer larger than ${MAX_MESSAGE} bytes`));
          return;
        }
        const line = Buffer.concat(chunks).toString('utf8');
        let a: Record<string, unknown>;
        try {
          a = JSON.parse(line) as Record<string, unknown>;
        } catch {
          a = {};
        }
        if (a.podlegs === PROTOCOL && typeof a.refused === 'string') done(undefined);
        else if (a.podlegs === PROTOCOL && Number.isInteger(a.exitCode) && typeof a.stdout === 'string') done({ exitCode: a.exitCode as number, stdout: a.stdout });
        else done(tryAgain(cniVersion, `the podlegs agent at ${socket} sent something that is not an answer: ${line.slice(0, 80)}`));
      },
      closed: () => done(tryAgain(cniVersion,
        `the podlegs agent at ${socket} closed the connection before answering (it stopped or restarted); try again later`)),
      failed: () => done(undefined),
    });
    if (settled) c.close(); // a dialer that failed at once
  });
}

/** The whole client: the call served by the agent, or undefined when it must run in-process. */
export async function serveThroughAgent(env: NodeJS.ProcessEnv, stdin: string): Promise<CniOutput | undefined> {
  // VERSION needs no agent (and no node state): answered in-process, which always works.
  if (env.CNI_COMMAND === 'VERSION' || env.CNI_COMMAND === undefined) return undefined;
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined; // loadConf reports it, in-process
  }
  const socket = agentSocketFor(conf, env);
  // No socket file: no agent (connecting would fail the same way, ENOENT, only later).
  if (socket === null || !fs.existsSync(socket)) return undefined;
  const v = (conf as { cniVersion?: unknown }).cniVersion;
  return callAgent(socket, env, stdin, typeof v === 'string' && /^[0-9.]{1,10}$/.test(v) ? v : '1.1.0');
}
