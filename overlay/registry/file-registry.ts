// The file registry: a directory shared by the nodes of a lab (or an NFS/hostPath
// share). One file per member, written to a temp name and renamed into place,
// so concurrent writers never see or produce half-written entries.
import * as fs from 'fs';
import * as path from 'path';
import { Member, MemberProblem, MembershipSource, parseMember } from './member';

const fileName = (m: Pick<Member, 'vtep' | 'owner'>): string =>
  `${m.vtep}_${m.owner.replace(/\//g, '_')}.json`;

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

  register(m: Member): void {
    const dir = this.vniDir(m.vni);
    fs.mkdirSync(dir, { recursive: true });
    const final = path.join(dir, fileName(m));
    const tmp = path.join(dir, `.${process.pid}.${Date.now()}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(m));
    fs.renameSync(tmp, final);
  }

  /** Removes a member; false when it was not registered. */
  unregister(m: Pick<Member, 'vni' | 'vtep' | 'owner'>): boolean {
    try {
      fs.unlinkSync(path.join(this.vniDir(m.vni), fileName(m)));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Members of the given VNIs (all when omitted); unreadable entries are reported, not returned. */
  async list(vnis?: Iterable<number>): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    const members: Member[] = [];
    const problems: MemberProblem[] = [];
    let dirs: string[];
    if (vnis) dirs = [...vnis].map((v) => `vni-${v}`);
    else {
      try {
        dirs = fs.readdirSync(this.dir).filter((d) => d.startsWith('vni-'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { members, problems };
        throw e;
      }
    }
    for (const d of dirs) {
      let files: fs.Dirent[];
      try {
        files = fs.readdirSync(path.join(this.dir, d), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      for (const f of files) {
        if (!f.name.endsWith('.json') || f.name.startsWith('.')) continue;
        const where = path.join(d, f.name);
        // Another node's bytes: no symlinks or devices, nothing large enough to hurt.
        if (!f.isFile()) { problems.push({ where, reason: 'not a regular file' }); continue; }
        try {
          const text = readCapped(path.join(this.dir, where), MAX_ENTRY_BYTES);
          if (text === undefined) { problems.push({ where, reason: `larger than ${MAX_ENTRY_BYTES} bytes` }); continue; }
          const parsed = parseMember(JSON.parse(text));
          if (typeof parsed === 'string') problems.push({ where, reason: parsed });
          else if (`vni-${parsed.vni}` !== d) problems.push({ where, reason: `vni ${parsed.vni} filed under ${d}` });
          else members.push(parsed);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while listing
          problems.push({ where, reason: (e as Error).message });
        }
      }
    }
    return { members, problems };
  }

  watch(onChange: () => void): () => void {
    // fs.watch is not recursive on Linux for Node 20: watch the root and each vni dir.
    fs.mkdirSync(this.dir, { recursive: true });
    const watchers = new Map<string, fs.FSWatcher>();
    const add = (p: string): void => {
      if (watchers.has(p)) return;
      try {
        const w = fs.watch(p, () => { rescan(); onChange(); });
        w.on('error', () => { watchers.delete(p); });
        watchers.set(p, w);
      } catch { /* vanished: the periodic resync covers it */ }
    };
    const rescan = (): void => {
      try {
        for (const d of fs.readdirSync(this.dir)) if (d.startsWith('vni-')) add(path.join(this.dir, d));
      } catch { /* root vanished */ }
    };
    add(this.dir);
    rescan();
    return () => { for (const w of watchers.values()) w.close(); watchers.clear(); };
  }
}
