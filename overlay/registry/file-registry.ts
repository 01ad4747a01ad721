// The file registry: a directory shared by the nodes of a lab (or an NFS/hostPath
// share). One file per member, written to a temp name and renamed into place,
// so concurrent writers never see or produce half-written entries.
import * as fs from 'fs';
import * as path from 'path';
import { getSystemErrorName } from 'util';
import { removeFileAndTemps, writeFileAtomic } from '../fs/atomic-write';
import { loadAddon } from '../kernel/netns';
import { Member, MemberProblem, MembershipSource, parseMember, WatchHint } from './member';

const fileName = (m: Pick<Member, 'vtep' | 'owner'>): string =>
  `${m.vtep}_${m.owner.replace(/\//g, '_')}.json`;

/** Whose entry a file (or its ".<name>.….tmp" temp file) is: the VTEP its name starts with. */
function hintOf(file: string): WatchHint | undefined {
  const name = file.startsWith('.') ? file.slice(1) : file;
  const i = name.indexOf('_');
  return i > 0 ? { vtep: name.slice(0, i) } : undefined;
}

const MAX_ENTRY_BYTES = 4096;
const scratch = Buffer.alloc(MAX_ENTRY_BYTES + 1); // list() is synchronous inside: one buffer will do

/** The file's text, or undefined when it is longer than max bytes. */
function readCapped(file: string, max: number): string | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = scratch.length > max ? scratch : Buffer.alloc(max + 1);
    let n = 0;
    for (let r; n <= max && (r = fs.readSync(fd, buf, n, max + 1 - n, null)) > 0;) n += r;
    return n > max ? undefined : buf.toString('utf8', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

export class FileRegistry implements MembershipSource {
  constructor(readonly dir: string) {}

  private vniDir(vni: number): string {
    return path.join(this.dir, `vni-${vni}`);
  }

  /**
   * Writes a member's entry, atomically but without fsync: a crash of this node that loses
   * or tears it also removed the leg it describes; readers report a torn entry and skip it,
   * and the old sandbox's DEL (or GC) removes it by name. Unregister never waits for
   * durability either. Writers that crash (not the node) leave the old or the new entry.
   */
  register(m: Member): void {
    const dir = this.vniDir(m.vni);
    writeFileAtomic(path.join(dir, fileName(m)), JSON.stringify(m), 0o644, { syncContent: false });
  }

  /** Removes a member (and a temp file its killed writer left); false when it was not registered. */
  unregister(m: Pick<Member, 'vni' | 'vtep' | 'owner'>): boolean {
    return removeFileAndTemps(path.join(this.vniDir(m.vni), fileName(m)));
  }

  /** Members of the given VNIs (all when omitted); unreadable entries are reported, not returned. */
  async list(vnis?: Iterable<number>): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    return split(this.scan(vnis));
  }

  /** Reads the entries of the given VNIs (all when omitted), by "vni-<n>/<file>". */
  protected scan(vnis?: Iterable<number>): Map<string, Entry> {
    const out = new Map<string, Entry>();
    let dirs: string[];
    if (vnis) dirs = [...vnis].map((v) => `vni-${v}`);
    else {
      try {
        dirs = fs.readdirSync(this.dir).filter((d) => d.startsWith('vni-'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
        throw e;
      }
    }
    const readDir = smallFileReader();
    for (const d of dirs) {
      if (readDir) {
        const got = readDir(this.dir, d);
        if (!got) continue;
        for (let i = 0; i < got.length; i += 2) {
          const e = this.entryOf(d, got[i] as string, got[i + 1] as string | number);
          if (e) out.set(`${d}/${got[i] as string}`, e);
        }
        continue;
      }
      let files: fs.Dirent[];
      try {
        files = fs.readdirSync(path.join(this.dir, d), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      for (const f of files) {
        const e = this.readEntry(d, f.name, f.isFile());
        if (e) out.set(path.join(d, f.name), e);
      }
    }
    return out;
  }

  /** An entry from what the native reader found for d/name: its text, or why not (see smallFileReader). */
  private entryOf(d: string, name: string, got: string | number): Entry | undefined {
    if (!isEntryName(d, name)) return undefined;
    const where = `${d}/${name}`;
    if (got === -2) return { problem: { where, reason: 'not a regular file' } };
    if (got === -1) return { problem: { where, reason: `larger than ${MAX_ENTRY_BYTES} bytes` } };
    if (typeof got === 'number') return { problem: { where, reason: `cannot read: ${getSystemErrorName(-got)}` } };
    return parseEntry(where, d, got);
  }

  /** One file of directory d; undefined when it is no entry (temp file, other name, gone). */
  protected readEntry(d: string, name: string, isFile?: boolean): Entry | undefined {
    if (!isEntryName(d, name)) return undefined;
    const where = path.join(d, name);
    let text: string | undefined;
    try {
      // Another node's bytes: no symlinks or devices, nothing large enough to hurt.
      if (!(isFile ?? fs.lstatSync(path.join(this.dir, where)).isFile())) return { problem: { where, reason: 'not a regular file' } };
      text = readCapped(path.join(this.dir, where), MAX_ENTRY_BYTES);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // removed meanwhile
      return { problem: { where, reason: (e as Error).message } };
    }
    if (text === undefined) return { problem: { where, reason: `larger than ${MAX_ENTRY_BYTES} bytes` } };
    return parseEntry(where, d, text);
  }

  watch(onChange: () => void): () => void {
    return this.watchDirs(() => onChange());
  }

  /** inotify on the root and every vni dir (fs.watch is not recursive on Linux for Node 20). */
  protected watchDirs(onEvent: (vniDir: string | undefined, file: string | null) => void): () => void {
    fs.mkdirSync(this.dir, { recursive: true });
    const watchers = new Map<string, fs.FSWatcher>();
    const add = (d: string | undefined): void => {
      const p = d ? path.join(this.dir, d) : this.dir;
      if (watchers.has(p)) return;
      try {
        const w = fs.watch(p, (_event, file) => {
          if (!d) rescan(); // a new vni dir: watch it too
          onEvent(d, typeof file === 'string' ? file : null);
        });
        w.on('error', () => { watchers.delete(p); });
        watchers.set(p, w);
      } catch { /* vanished: the periodic resync covers it */ }
    };
    const rescan = (): void => {
      try {
        for (const d of fs.readdirSync(this.dir)) if (d.startsWith('vni-')) add(d);
      } catch { /* root vanished */ }
    };
    add(undefined);
    rescan();
    return () => { for (const w of watchers.values()) w.close(); watchers.clear(); };
  }
}

/**
 * The agent's view of the registry: the same files, kept in memory while watched and
 * re-read one by one as inotify names them, so a join costs one file read instead of a
 * scan of the whole registry. resync() drops the memory: the next list() reads every
 * file again (the periodic resync repairs what a lost event, or a network filesystem
 * without inotify, would otherwise leave stale).
 */
export class WatchedFileRegistry extends FileRegistry {
  private cache?: Map<string, Entry>;
  private readonly dirty = new Set<string>();
  private watching = 0;

  resync(): void {
    this.cache = undefined;
  }

  override async list(vnis?: Iterable<number>): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    if (vnis || this.watching === 0) return super.list(vnis);
    if (!this.cache) {
      this.dirty.clear();
      this.cache = this.scan();
    } else {
      for (const where of this.dirty) {
        const e = this.readEntry(path.dirname(where), path.basename(where));
        if (e) this.cache.set(where, e);
        else this.cache.delete(where);
      }
      this.dirty.clear();
    }
    return split(this.cache);
  }

  override watch(onChange: (hint?: WatchHint) => void): () => void {
    this.watching++;
    this.cache = undefined; // events before now were not seen
    const stop = this.watchDirs((d, file) => {
      if (d && file) this.dirty.add(path.join(d, file));
      else this.cache = undefined; // the root changed, or inotify did not say which file
      onChange(d && file ? hintOf(file) : undefined);
    });
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stop();
      this.watching--;
      this.cache = undefined;
    };
  }
}

/** Registry entries: vni-<n>/<name>.json; dot files are temp files of a writer. */
const isEntryName = (d: string, name: string): boolean => name.endsWith('.json') && !name.startsWith('.') && d.startsWith('vni-');

/** One entry's text, checked like every other node's bytes. */
function parseEntry(where: string, d: string, text: string): Entry {
  let parsed: Member | string;
  try {
    parsed = parseMember(JSON.parse(text));
  } catch (e) {
    return { problem: { where, reason: (e as Error).message } };
  }
  if (typeof parsed === 'string') return { problem: { where, reason: parsed } };
  if (`vni-${parsed.vni}` !== d) return { problem: { where, reason: `vni ${parsed.vni} filed under ${d}` } };
  return { member: parsed };
}

/**
 * The native addon's whole-directory reader (name, text-or-reason pairs; undefined for a
 * directory that is gone), or undefined when the addon has none (an addon built before it):
 * then scan() reads file by file from JS, with the same rules and the same results.
 */
function smallFileReader(): ((root: string, d: string) => (string | number)[] | undefined) | undefined {
  let addon: ReturnType<typeof loadAddon>;
  try {
    addon = loadAddon();
  } catch {
    return undefined;
  }
  const read = addon.readSmallFiles;
  if (typeof read !== 'function') return undefined;
  return (root, d) => {
    try {
      return read(path.join(root, d), MAX_ENTRY_BYTES);
    } catch (e) {
      if ((e as { errno?: number }).errno === 2) return undefined; // ENOENT: the dir vanished
      throw e;
    }
  };
}

type Entry = { member: Member; problem?: undefined } | { problem: MemberProblem; member?: undefined };

function split(entries: Map<string, Entry>): { members: Member[]; problems: MemberProblem[] } {
  const members: Member[] = [];
  const problems: MemberProblem[] = [];
  for (const e of entries.values()) {
    if (e.member) members.push(e.member);
    else problems.push(e.problem);
  }
  return { members, problems };
}
