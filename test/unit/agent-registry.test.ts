import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FileRegistry, WatchedFileRegistry } from '../../overlay/registry/file-registry';
import { loadAddon } from '../../overlay/kernel/netns';
import { member } from './agent-fake';
import { SEEN_MS, waitUntil } from '../support/wait';

jest.setTimeout(4 * SEEN_MS);

describe('WatchedFileRegistry (the agent\'s cached view of the file registry)', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-reg-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const owners = async (r: FileRegistry): Promise<string[]> => (await r.list()).members.map((m) => m.owner).sort();
  /** Waits (generously) until the watched view lists exactly these owners: inotify events arrive when they do. */
  const ownersBecome = (r: FileRegistry, want: string[]): Promise<unknown> =>
    waitUntil(`owners ${want.join(', ')}`, async () => JSON.stringify(await owners(r)) === JSON.stringify(want), SEEN_MS, 10);

  it('follows registrations, removals and bad entries through inotify, re-reading only named files', async () => {
    const writer = new FileRegistry(dir);
    writer.register(member(100, '192.0.2.12', 1));
    const r = new WatchedFileRegistry(dir);
    let events = 0;
    const stop = r.watch(() => { events++; });
    try {
      expect(await owners(r)).toEqual(['c1/eth0/net1']);
      writer.register(member(100, '192.0.2.13', 2));
      writer.register(member(200, '192.0.2.13', 3)); // a new vni dir
      await ownersBecome(r, ['c1/eth0/net1', 'c2/eth0/net1', 'c3/eth0/net1']);
      expect(events).toBeGreaterThan(0);
      writer.unregister(member(100, '192.0.2.12', 1));
      fs.writeFileSync(path.join(dir, 'vni-100', 'bad.json'), '{');
      await waitUntil('removal and bad entry seen', async () => (await r.list()).problems.length > 0 && (await owners(r)).length === 2, SEEN_MS, 10);
      const l = await r.list();
      expect(l.members.map((m) => m.owner).sort()).toEqual(['c2/eth0/net1', 'c3/eth0/net1']);
      expect(l.problems).toEqual([{ where: 'vni-100/bad.json', reason: expect.any(String) }]);
      // A second reader: once listed, a list() with no event in between reads no file; an
      // event re-reads the file it names; resync() (the agent's periodic resync) reads all.
      stop();
      const r2 = new WatchedFileRegistry(dir);
      const stop2 = r2.watch(() => undefined);
      try {
        await r2.list();
        const reads = jest.spyOn(r2 as unknown as { readEntry(d: string, n: string): unknown }, 'readEntry');
        await r2.list();
        expect(reads).not.toHaveBeenCalled(); // nothing changed: no file read at all
        writer.register(member(100, '192.0.2.14', 4));
        await ownersBecome(r2, ['c2/eth0/net1', 'c3/eth0/net1', 'c4/eth0/net1']);
        expect(reads.mock.calls.map((c) => c[0])).toEqual(expect.arrayContaining(['vni-100']));
        expect(new Set(reads.mock.calls.map((c) => c[1])).size).toBeLessThanOrEqual(2); // the entry (and its temp file)
        reads.mockClear();
        // A full scan goes through the native directory reader (entryOf) when the addon has one.
        const scanned = jest.spyOn(r2 as unknown as { entryOf(d: string, n: string): unknown }, 'entryOf');
        r2.resync();
        expect(await owners(r2)).toEqual(['c2/eth0/net1', 'c3/eth0/net1', 'c4/eth0/net1']);
        expect(reads.mock.calls.length + scanned.mock.calls.length).toBeGreaterThanOrEqual(4); // everything read again
      } finally {
        stop2();
      }
    } finally {
      stop();
    }
  });

  it('reads from disk when not watched, like the plain registry', async () => {
    const r = new WatchedFileRegistry(dir);
    new FileRegistry(dir).register(member(100, '192.0.2.12', 1));
    expect(await owners(r)).toEqual(['c1/eth0/net1']);
    new FileRegistry(dir).register(member(100, '192.0.2.12', 2));
    expect(await owners(r)).toEqual(['c1/eth0/net1', 'c2/eth0/net1']);
  });

  it.each([['the native directory reader', true], ['the JS fallback (an addon without it)', false]])('skips symlinks, oversized and misfiled entries (%s)', async (_how, native) => {
    const addon = loadAddon();
    const saved = addon.readSmallFiles;
    expect(typeof saved).toBe('function'); // build/Release is the current addon
    if (!native) delete addon.readSmallFiles;
    try {
      await badEntries();
    } finally {
      addon.readSmallFiles = saved;
    }
  });

  const badEntries = async (): Promise<void> => {
    const d = path.join(dir, 'vni-100');
    fs.mkdirSync(d, { recursive: true });
    fs.symlinkSync('/dev/zero', path.join(d, 'z.json'));
    fs.writeFileSync(path.join(d, 'big.json'), JSON.stringify({ ...member(100, '192.0.2.12', 1), pad: 'x'.repeat(5000) }));
    fs.writeFileSync(path.join(d, 'mis.json'), JSON.stringify(member(200, '192.0.2.12', 1)));
    fs.writeFileSync(path.join(d, '.tmp.json'), '{'); // a writer's temp file: not an entry yet
    const { members, problems } = await new FileRegistry(dir).list();
    expect(members).toEqual([]);
    expect(problems.map((p) => `${p.where}: ${p.reason}`).sort()).toEqual([
      'vni-100/big.json: larger than 4096 bytes', 'vni-100/mis.json: vni 200 filed under vni-100', 'vni-100/z.json: not a regular file']);
    // A good entry beside them is read; an unreadable one is reported, not fatal.
    new FileRegistry(dir).register(member(100, '192.0.2.12', 7));
    fs.writeFileSync(path.join(d, 'locked.json'), '{}', { mode: 0 });
    fs.mkdirSync(path.join(d, 'dir.json'));
    const again = await new FileRegistry(dir).list();
    expect(again.members.map((m) => m.owner)).toEqual(['c7/eth0/net1']);
    expect(again.problems.map((p) => p.where).sort()).toEqual(
      ['vni-100/big.json', 'vni-100/dir.json', 'vni-100/locked.json', 'vni-100/mis.json', 'vni-100/z.json']);
  };
});
