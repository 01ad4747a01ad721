// The thin client: hands a CNI call to the node agent over its unix socket and returns the
// agent's answer unchanged. Node built-ins only: dist/podlegs runs this before it loads the
// bundle, so a call the agent serves never loads netlink, winston or the bundle.
//
//   no socket / connection refused (any connect error) → undefined: run in-process
//   the agent refused the request (other protocol)     → undefined: run in-process
//   the agent closed or hung before answering          → CNI error 11 (try again later);
//     the runtime's DEL then works from the recorded state (in-process when the agent is gone)
import * as fs from 'fs';
import { CniOutput, CniRequest, MAX_MESSAGE, PROTOCOL } from '../../overlay/agent/cni-protocol';
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

// node's own pipe handle, as net.Socket drives it (lib/net.js, lib/internal/stream_base_commons.js):
// the same libuv calls without loading the stream machinery. Used only on node majors whose
// binding shape this was written against; anything unexpected falls back to dialNet.
interface PipeHandle {
  onread?: (buf: ArrayBuffer | undefined) => void;
  connect(req: object, path: string): number;
  readStart(): number;
  writeUtf8String(req: object, s: string): number;
  close(cb?: () => void): void;
}
interface RawBindings {
  Pipe: new (type: number) => PipeHandle;
  PipeConnectWrap: new () => { oncomplete?: (status: number) => void };
  WriteWrap: new () => { handle?: PipeHandle; oncomplete?: (status: number) => void };
  SOCKET: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

// Checked against node 20 (lib/net.js, stream_base_commons.js of v20); other majors take dialNet.
const RAW_NODE_MAJORS = /^v20\./;

function rawBindings(): RawBindings | undefined {
  if (!RAW_NODE_MAJORS.test(process.version)) return undefined;
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const pw = binding('pipe_wrap') as { Pipe?: unknown; PipeConnectWrap?: unknown; constants?: { SOCKET?: unknown } };
    const sw = binding('stream_wrap') as { WriteWrap?: unknown; streamBaseState?: unknown; kReadBytesOrError?: unknown; kArrayBufferOffset?: unknown };
    if (typeof pw.Pipe !== 'function' || typeof pw.PipeConnectWrap !== 'function' || typeof pw.constants?.SOCKET !== 'number'
      || typeof sw.WriteWrap !== 'function' || Object.prototype.toString.call(sw.streamBaseState) !== '[object Int32Array]'
      || typeof sw.kReadBytesOrError !== 'number' || typeof sw.kArrayBufferOffset !== 'number') return undefined;
    return {
      Pipe: pw.Pipe as RawBindings['Pipe'], PipeConnectWrap: pw.PipeConnectWrap as RawBindings['PipeConnectWrap'],
      WriteWrap: sw.WriteWrap as RawBindings['WriteWrap'], SOCKET: pw.constants.SOCKET, state: sw.streamBaseState as Int32Array,
      kReadBytesOrError: sw.kReadBytesOrError, kArrayBufferOffset: sw.kArrayBufferOffset,
    };
  } catch {
    return undefined;
  }
}

/** Through node's pipe handle directly (see RawBindings); undefined where that is not available. */
export function rawDial(): Dial | undefined {
  const b = rawBindings();
  if (!b) return undefined;
  return (socket, ev) => {
    const h = new b.Pipe(b.SOCKET);
    let open = true;
    const close = (): void => { if (open) { open = false; h.close(); } };
    const gone = (): void => { if (open) { close(); ev.closed(); } };
    const req = new b.PipeConnectWrap();
    req.oncomplete = (status) => {
      if (!open) return;
      if (status < 0) { close(); ev.failed(); return; }
      h.onread = (buf) => {
        const n = b.state[b.kReadBytesOrError];
        if (n > 0 && buf) ev.data(Buffer.from(buf, b.state[b.kArrayBufferOffset], n));
        else if (n < 0) gone(); // EOF or a read error
      };
      if (h.readStart() < 0) { gone(); return; }
      ev.connected();
    };
    const err = h.connect(req, socket);
    if (err < 0) { close(); process.nextTick(() => ev.failed()); }
    return {
      write: (s) => {
        if (!open) return;
        const w = new b.WriteWrap();
        w.handle = h;
        w.oncomplete = (status) => { if (status < 0) gone(); };
        if (h.writeUtf8String(w, s) < 0) gone();
      },
      close,
    };
  };
}

/** Sends the call to the agent at `socket`; undefined when it did not take it (run in-process). */
export function callAgent(socket: string, env: NodeJS.ProcessEnv, stdin: string, cniVersion: string, dial: Dial = rawDial() ?? dialNet): Promise<CniOutput | undefined> {
  return new Promise((resolve) => {
    const limit = timeoutMs(env);
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
