// The agent's CNI socket: serves the thin client's calls (protocol: cni-protocol.ts) with the
// handler the agent gives it (runCni, the same function a plugin runs in-process). Calls run
// concurrently; the node lock serialises what must be.
//
// The socket file is mode 0600 in a directory the agent creates. A live agent on the path (a
// connect succeeds) is refused: two agents answering for one node is never right; a stale
// file (connection refused: its agent died) is replaced.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { CniAnswer, CniOutput, CniRefusal, MAX_MESSAGE, PROTOCOL } from './cni-protocol';

export type CniHandler = (env: NodeJS.ProcessEnv, stdin: string) => Promise<CniOutput>;
type Meta = Record<string, unknown>;
export interface CniServerLog { info(m: string, meta?: Meta): void; warn(m: string, meta?: Meta): void }
export interface CniServer { readonly path: string; inFlight(): number; close(graceMs?: number): Promise<void> }
export class SocketInUse extends Error {}

/** True when something accepts connections on `file`; false when it is absent or stale. */
function live(file: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ path: file });
    c.on('connect', () => { c.destroy(); resolve(true); });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') resolve(false);
      else reject(new Error(`agent.socket ${file}: ${e.code ?? e.message}`));
    });
  });
}

function parseRequest(line: string): { env: NodeJS.ProcessEnv; stdin: string } | string {
  let r: unknown;
  try { r = JSON.parse(line); } catch { return 'the request is not JSON'; }
  const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
  if (o.podlegs !== PROTOCOL) return `protocol ${JSON.stringify(o.podlegs)?.slice(0, 20)} is not served here (this agent speaks ${PROTOCOL})`;
  const env = o.env as Record<string, unknown> | undefined;
  if (typeof env !== 'object' || env === null || Array.isArray(env) || !Object.values(env).every((v) => typeof v === 'string') || typeof o.stdin !== 'string') {
    return 'the request needs "env" (strings) and "stdin"';
  }
  return { env: env as NodeJS.ProcessEnv, stdin: o.stdin };
}

export async function serveCni(file: string, handler: CniHandler, log: CniServerLog): Promise<CniServer> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  if (await live(file)) throw new SocketInUse(`another podlegs agent serves ${file}; stop it first (or give this one another agent.socket)`);
  fs.rmSync(file, { force: true });
  let calls = 0;
  const server = net.createServer((c) => {
    const accepted = performance.now();
    let buf = '';
    let started = false;
    c.setEncoding('utf8');
    c.on('error', () => undefined); // the client went away: its call still completes
    const reply = (doc: CniAnswer | CniRefusal): void => { if (!c.destroyed) c.end(`${JSON.stringify(doc)}\n`); };
    c.on('data', (d: string) => {
      if (started) return;
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_MESSAGE) { started = true; reply({ podlegs: PROTOCOL, refused: `request larger than ${MAX_MESSAGE} bytes` }); }
        return;
      }
      started = true;
      const read = performance.now();
      const req = parseRequest(buf.slice(0, nl));
      buf = '';
      if (typeof req === 'string') {
        log.warn('CNI request refused', { reason: req });
        reply({ podlegs: PROTOCOL, refused: req });
        return;
      }
      // A client that gave up while this agent was stalled has closed already: its request,
      // read only now, must not run behind its back (the runtime retries or DELs instead).
      setImmediate(() => {
        if (c.readableEnded || c.destroyed) { log.warn('CNI request dropped: its client left before it was read', { command: req.env.CNI_COMMAND }); return; }
        calls++;
        const start = performance.now();
        handler(req.env, req.stdin)
          .then((out) => {
            const ran = performance.now();
            reply({ podlegs: PROTOCOL, exitCode: out.exitCode, stdout: out.stdout });
            // After the reply, so the client does not wait for it. Where a call's time went:
            // reading the request, waiting for the event loop, runCni itself.
            const ms = (a: number, b: number): number => Math.round((b - a) * 100) / 100;
            log.info('CNI call served', {
              command: req.env.CNI_COMMAND, containerId: req.env.CNI_CONTAINERID, ifname: req.env.CNI_IFNAME, exitCode: out.exitCode,
              readMs: ms(accepted, read), waitMs: ms(read, start), runMs: ms(start, ran),
            });
          })
          .catch((e: unknown) => {
            log.warn('CNI call failed in the agent', { error: (e as Error)?.message ?? String(e) });
            c.destroy(); // the client answers code 11
          })
          .finally(() => { calls--; });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // 0600 from the start: nobody but root may ask the agent to change the node.
    const old = process.umask(0o177);
    try {
      server.listen({ path: file, backlog: 511 }, () => { server.off('error', reject); resolve(); });
    } finally {
      process.umask(old);
    }
  });
  fs.chmodSync(file, 0o600);
  const ino = fs.statSync(file).ino;
  return {
    path: file,
    inFlight: () => calls,
    /** Stops accepting, lets calls in flight finish (at most graceMs), removes the socket file if it is still ours. */
    close: async (graceMs = 10_000) => {
      try { if (fs.statSync(file).ino === ino) fs.rmSync(file, { force: true }); } catch { /* gone already */ }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        server.close(() => { clearTimeout(t); resolve(); });
      });
    },
  };
}
