// One node-wide lock around segment changes: an ADD creating segment 100 and a
// DEL removing it must not interleave. A lock file holding the owner's PID;
// a lock whose owner is dead is taken over.
import * as fs from 'fs';
import * as path from 'path';

export class LockTimeout extends Error {}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function withNodeLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'node.lock');
  const deadline = Date.now() + timeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(fs.readFileSync(file, { encoding: 'utf8', flag: 'a+' }) || 0);
      if (owner && !alive(owner)) { fs.rmSync(file, { force: true }); continue; }
      if (Date.now() > deadline) throw new LockTimeout(`node lock ${file} is held by PID ${owner || 'unknown'}`);
      await sleep(wait);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}
