// Entering a network namespace for the duration of a synchronous call.
// A netlink socket belongs to the namespace of the thread that creates it,
// so we switch the main thread, create the socket, and switch back at once.
import * as fs from 'fs';
import { addonCandidates, loadAddonFrom } from './addon';
import { KernelError } from './errors';

interface NetnsAddon {
  setns(fd: number, nstype: number): void;
  CLONE_NEWNET: number;
  openLock(file: string): number;
  tryLock(fd: number): boolean;
  /** The file registry's directory reader (native/netns.c); absent in addons built before it. */
  readSmallFiles?: (dir: string, max: number) => (string | number)[];
}

let addon: NetnsAddon | undefined;

/** The native addon (setns, flock, readSmallFiles); node-lock.ts uses its flock part, the file registry its reader. */
export function loadAddon(): NetnsAddon {
  if (addon) return addon;
  addon = loadAddonFrom<NetnsAddon>(__dirname);
  if (!addon) throw new Error(`podlegs_netns.node not found (looked in ${addonCandidates(__dirname).join(', ')}); run npm install`);
  return addon;
}

/** Opens a netns path, mapping a missing one to ENOENT. */
export function openNetns(nsPath: string): number {
  try {
    return fs.openSync(nsPath, 'r');
  } catch (e) {
    throw new KernelError(`open netns ${nsPath}`, (e as NodeJS.ErrnoException).errno ? Math.abs((e as NodeJS.ErrnoException).errno as number) : 2, e);
  }
}

/** Runs fn with the calling thread inside the netns at nsPath (fn must be synchronous). */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const a = loadAddon();
  const target = openNetns(nsPath);
  const home = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    try {
      a.setns(target, a.CLONE_NEWNET);
    } catch (e) {
      throw new KernelError(`setns ${nsPath}`, (e as { errno?: number }).errno ?? 22, e);
    }
    try {
      return fn();
    } finally {
      // Staying in the wrong namespace would corrupt everything after: abort instead.
      try { a.setns(home, a.CLONE_NEWNET); } catch { process.abort(); }
    }
  } finally {
    fs.closeSync(target);
    fs.closeSync(home);
  }
}

/** True when the path is a network namespace (not just any file). */
export function isNetns(nsPath: string): boolean {
  try {
    const st = fs.statSync(nsPath);
    const self = fs.statSync('/proc/self/ns/net');
    return st.dev === self.dev;
  } catch {
    return false;
  }
}

/** "<dev>:<ino>" of a network namespace file: equal for two paths only when they name the same netns. */
export function netnsId(nsPath: string): string | undefined {
  if (!isNetns(nsPath)) return undefined;
  const st = fs.statSync(nsPath);
  return `${st.dev}:${st.ino}`;
}
