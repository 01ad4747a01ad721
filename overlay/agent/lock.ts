// One agent per node: the lock is an abstract unix socket. Abstract names are
// scoped to the network namespace, which is exactly what an agent manages, and
// the kernel frees the name when its holder dies (SIGKILL included), so there
// is no stale lock file to judge by a PID that may have been reused. The socket
// also answers "who holds it" with a line of JSON, for errors and `podlegs status`.
import * as net from 'net';

export const AGENT_SOCKET = 'podlegs-agent';

export class AgentLockHeld extends Error {}

export interface AgentLock { release(): Promise<void> }

/** Takes the lock or throws AgentLockHeld naming the holder; info() is served to askers. */
export async function acquireAgentLock(info: () => Record<string, unknown>, name = AGENT_SOCKET): Promise<AgentLock> {
  const server = net.createServer((c) => {
    c.on('error', () => undefined);
    c.end(`${JSON.stringify(info())}\n`);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0${name}` }, () => { server.off('error', reject); resolve(); });
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    const holder = await queryAgent(name);
    throw new AgentLockHeld(`another podlegs agent already runs in this network namespace${holder?.pid ? ` (pid ${String(holder.pid)})` : ''}; stop it first`);
  }
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** What the running agent of this netns says about itself, or undefined when none runs. */
export function queryAgent(name = AGENT_SOCKET, timeoutMs = 1000): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    let data = '';
    const c = net.connect({ path: `\0${name}` });
    const done = (v: Record<string, unknown> | undefined): void => { clearTimeout(t); c.destroy(); resolve(v); };
    const t = setTimeout(() => done(undefined), timeoutMs);
    c.setEncoding('utf8');
    c.on('data', (d: string) => { data += d; });
    c.on('end', () => {
      try { done(JSON.parse(data) as Record<string, unknown>); } catch { done({}); }
    });
    c.on('error', () => done(undefined));
  });
}
