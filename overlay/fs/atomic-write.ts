// The one way podlegs replaces a file: readers see the old content or the new one, never a
// partial file, and the new content survives a power loss once this returns.
import * as fs from 'fs';
import * as path from 'path';

export interface AtomicWriteOptions {
  /**
   * false: no fsync of the directory after the rename, so a power loss right after may undo
   * the rename: readers then find the previous version, or no file, never a partial one (the
   * content itself is still fsynced before the rename). Only for files whose previous
   * version (or absence) is a correct state after a crash: a completed-ADD mark over its
   * durable plan, or a registry entry of a leg that a node crash removes anyway. Saves one
   * journal commit (~1 ms, more on a busy disk) per write.
   */
  durableRename?: boolean;
  /**
   * false (implies durableRename false): no fsync at all. Atomic against a crash of the
   * writer (readers see the old or the new file), not against a power loss, after which the
   * file may be empty or torn. Only for entries that describe kernel objects a node crash
   * removes anyway, whose readers skip an unreadable entry and whose removal goes by name.
   */
  syncContent?: boolean;
}

/**
 * Replaces file with content: a unique temp file in the same directory (created O_EXCL with mode),
 * fsync, rename over file, fsync of the directory (unless opts.durableRename is false). On failure
 * the temp file is removed. The temp name starts with a dot and ends in .tmp: libcni and the
 * registry readers skip it.
 */
// Temp names: unique per process by the counter, across processes by the pid, and across pid
// reuse (a stale temp of a dead writer) by the random part; O_EXCL refuses any clash anyway.
// Not crypto.randomBytes: node's crypto module is ~3 ms to load on every CNI call.
let tmpSeq = 0;
const tmpTag = (): string => `${process.pid}.${(tmpSeq++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export function writeFileAtomic(file: string, content: string, mode = 0o644, opts: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `${tempPrefix(file)}${tmpTag()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode); // the umask must not narrow or the caller's mode is not what it asked
    if (opts.syncContent !== false) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (opts.durableRename !== false && opts.syncContent !== false) fsyncDir(dir);
}

/** Every temp file of `file` starts with this (its directory's readers skip dot files). */
const tempPrefix = (file: string): string => `.${path.basename(file)}.`;

/**
 * Removes file and every temp file a writeFileAtomic of it left behind: a writer SIGKILLed
 * between creating its temp file and the rename leaves one, which nobody else would ever remove.
 * For the one who owns the file's removal (DEL of an attachment: nobody writes it meanwhile).
 * False when file was absent. A missing directory is fine.
 */
export function removeFileAndTemps(file: string): boolean {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const prefix = tempPrefix(file);
  const ours = /^\d+\.[0-9a-z]+\.tmp$/; // what follows the prefix in writeFileAtomic's temp names (tmpTag)
  for (const n of names) if (n.startsWith(prefix) && ours.test(n.slice(prefix.length))) fs.rmSync(path.join(path.dirname(file), n), { force: true });
  try {
    fs.unlinkSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function fsyncDir(dir: string): void {
  let dfd: number | undefined;
  try {
    dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
  } catch {
    // Best effort: not every filesystem allows fsync of a directory.
  } finally {
    if (dfd !== undefined) fs.closeSync(dfd);
  }
}
