// `podlegs conf install`: keeps <dir>/00-podlegs.conflist equal to
// [<Cilium's plugins>, podlegs]. The file name sorts before Cilium's
// (05-cilium.conflist), so runtimes that take the first file in the directory
// (libcni's sorted listing: containerd, CRI-O) pick the chained list. Cilium's
// own file is only ever read. Writes are atomic (temp file + rename in the same
// directory) and happen only when the bytes change.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../overlay/fs/atomic-write';
import { ConfError, formatConflist, JsonObject, parseEntry, parseJsonObject, renderChained } from './render';

export const DEFAULT_OUT = '00-podlegs.conflist';
export const DEFAULT_INTERVAL_MS = 10_000;
const CNI_EXTS = ['.conf', '.conflist', '.json'];

export interface InstallOptions {
  /** Directory holding Cilium's conflist and receiving ours (host /etc/cni/net.d). */
  dir: string;
  /** Cilium's file name in dir; default: the first CNI config file there with a cilium-cni plugin. */
  ciliumFile?: string;
  /** Our file name in dir; default 00-podlegs.conflist. */
  outName?: string;
  /** The podlegs entry; default {"type":"podlegs"}. */
  entry?: JsonObject;
  /** File holding the podlegs entry, re-read on every pass (a mounted ConfigMap); wins over entry. */
  entryFile?: string;
  /** Network name; default Cilium's. */
  name?: string;
}

export type InstallAction =
  | 'written' // ours was created or replaced
  | 'unchanged' // ours already had the rendered bytes
  | 'removed' // Cilium's file is gone, so ours was removed too
  | 'absent' // Cilium's file is gone and ours did not exist
  | 'kept'; // Cilium's file could not be used (e.g. half-written); ours left as it was

export interface InstallOutcome {
  action: InstallAction;
  /** Absolute path of Cilium's file, when one was found. */
  cilium?: string;
  /** Absolute path of our file. */
  out: string;
  /** Why the action was taken (for 'kept': the error). */
  reason?: string;
  /** CNI config files sorting before ours: a runtime that takes the first file would not pick ours. */
  shadowedBy: string[];
}

const isCniConfigName = (f: string): boolean => !f.startsWith('.') && CNI_EXTS.includes(path.extname(f));

/** CNI config files of a directory in the order libcni lists them (byte order of names). */
export function cniConfigFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.filter(isCniConfigName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function hasCiliumPlugin(file: string): boolean {
  try {
    const doc = parseJsonObject(fs.readFileSync(file, 'utf8'), file);
    const plugins = Array.isArray(doc.plugins) ? doc.plugins : [doc];
    return plugins.some((p) => typeof p === 'object' && p !== null && !Array.isArray(p) && p.type === 'cilium-cni');
  } catch {
    return false;
  }
}

/** Cilium's file in dir: the named one if it exists, else the first config file with a cilium-cni plugin. */
export function findCiliumFile(dir: string, ciliumFile: string | undefined, outName: string): string | undefined {
  if (ciliumFile !== undefined) {
    const p = path.resolve(dir, ciliumFile);
    return fs.existsSync(p) ? p : undefined;
  }
  for (const f of cniConfigFiles(dir)) {
    if (f === outName) continue;
    const p = path.join(dir, f);
    if (hasCiliumPlugin(p)) return p;
  }
  return undefined;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** One reconciliation pass. Throws ConfError only for a bad podlegs entry or name (our own input). */
export function installOnce(o: InstallOptions): InstallOutcome {
  const outName = o.outName ?? DEFAULT_OUT;
  if (!isCniConfigName(outName) || outName.includes('/')) throw new ConfError(`output name "${outName}" must be a plain .conflist/.conf/.json file name`, 'input');
  const out = path.join(o.dir, outName);
  let entry = o.entry;
  if (o.entryFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(o.entryFile, 'utf8');
    } catch (e) {
      throw new ConfError(`cannot read the podlegs entry: ${(e as Error).message}`, 'input');
    }
    entry = parseEntry(text, o.entryFile);
  }
  const cilium = findCiliumFile(o.dir, o.ciliumFile, outName);
  const shadowedBy = (): string[] => cniConfigFiles(o.dir).filter((f) => f < outName);
  if (cilium === undefined) {
    // Cilium has not written its file (agent not ready) or removed it: a chained
    // list calling cilium-cni must not make the node look network-ready either.
    const existed = fs.existsSync(out);
    if (existed) fs.rmSync(out, { force: true });
    return { action: existed ? 'removed' : 'absent', out, reason: `no Cilium conflist in ${o.dir}`, shadowedBy: shadowedBy() };
  }
  if (path.resolve(cilium) === path.resolve(out)) throw new ConfError(`Cilium's file and the output are the same file (${out})`, 'input');
  let text: string;
  try {
    const c = renderChained(fs.readFileSync(cilium, 'utf8'), cilium, { entry, name: o.name });
    text = formatConflist(c);
  } catch (e) {
    // Cilium's file unreadable or half-written: keep what we have and retry later.
    // A problem with our own entry is reported as such.
    if (e instanceof ConfError && e.origin === 'input') throw e;
    return { action: 'kept', cilium, out, reason: (e as Error).message, shadowedBy: shadowedBy() };
  }
  if (readIfExists(out) === text) return { action: 'unchanged', cilium, out, shadowedBy: shadowedBy() };
  writeFileAtomic(out, text);
  return { action: 'written', cilium, out, shadowedBy: shadowedBy() };
}

export interface WatchOptions extends InstallOptions {
  /** Periodic re-check (covers missed inotify events); default 10 s. */
  intervalMs?: number;
  /** Delay after a directory event before re-checking (coalesces bursts); default 50 ms. */
  debounceMs?: number;
  /** Called after every pass (including unchanged ones). */
  onPass?: (r: InstallOutcome) => void;
  /** Called when a pass throws (bad entry, I/O error); watching goes on. */
  onError?: (e: Error) => void;
}

export interface Watcher {
  /** Runs a pass now (also what events and the timer do). */
  check(): InstallOutcome | undefined;
  close(): void;
}

/**
 * Installs now, then re-renders whenever Cilium rewrites its file: fs.watch on
 * the directory (Cilium replaces its file by rename, so a file watch would go
 * stale) plus a periodic check.
 */
export function watchInstall(o: WatchOptions): Watcher {
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const check = (): InstallOutcome | undefined => {
    if (closed) return undefined;
    try {
      const r = installOnce(o);
      o.onPass?.(r);
      return r;
    } catch (e) {
      o.onError?.(e as Error);
      return undefined;
    }
  };
  const schedule = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      check();
    }, o.debounceMs ?? 50);
  };
  let fsw: fs.FSWatcher | undefined;
  const startFsWatch = (): void => {
    if (closed || fsw) return;
    try {
      fsw = fs.watch(o.dir, { persistent: true }, (_ev, file) => {
        // Our own temp files and writes would only cause no-op passes; skip the temp ones.
        if (file && String(file).endsWith('.tmp')) return;
        schedule();
      });
      fsw.on('error', () => {
        fsw?.close();
        fsw = undefined; // the periodic check re-arms it
      });
    } catch {
      fsw = undefined; // directory missing: the periodic check retries
    }
  };
  startFsWatch();
  const interval = setInterval(() => {
    startFsWatch();
    check();
  }, o.intervalMs ?? DEFAULT_INTERVAL_MS);
  check();
  return {
    check,
    close(): void {
      closed = true;
      clearInterval(interval);
      if (timer) clearTimeout(timer);
      fsw?.close();
    },
  };
}
