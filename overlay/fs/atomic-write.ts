// The one way podlegs replaces a file: readers see the old content or the new one, never a
// partial file, and the new content survives a power loss once this returns.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Replaces file with content: a unique temp file in the same directory (created O_EXCL with mode),
 * fsync, rename over file, fsync of the directory. On failure the temp file is removed.
 * The temp name starts with a dot and ends in .tmp: libcni and the registry readers skip it.
 */
export function writeFileAtomic(file: string, content: string, mode = 0o644): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `${tempPrefix(file)}${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode); // the umask must not narrow or the caller's mode is not what it asked
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
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
  const ours = /^\d+\.[0-9a-f]{8}\.tmp$/; // what follows the prefix in writeFileAtomic's temp names
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
