// One node-wide lock around segment changes: an ADD creating segment 100 and a
// DEL removing it must not interleave. flock(2) on a file that is never removed:
// the kernel releases it when the holder closes it or dies, so nothing is ever
// left to take over. Polled with LOCK_NB so the event loop never blocks in the syscall.
import * as fs from 'fs';
import * as path from 'path';
import { loadAddon } from './kernel/netns';

export class LockTimeout extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function withNodeLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'node.lock');
  const addon = loadAddon();
  const fd = addon.openLock(file);
  try {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 2; !addon.tryLock(fd); wait = Math.min(wait * 2, 50)) {
      if (Date.now() > deadline) throw new LockTimeout(`node lock ${file} still held by another process after ${timeoutMs} ms`);
      await sleep(wait);
    }
    return await fn();
  } finally {
    fs.closeSync(fd); // releases the lock
  }
}
