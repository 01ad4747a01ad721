import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { removeFileAndTemps, writeFileAtomic } from '../../overlay/fs/atomic-write';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aw-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('replaces the file with the complete content and leaves no temp file', () => {
    const file = path.join(dir, 'sub', 'a.json');
    writeFileAtomic(file, 'old');
    const big = 'x'.repeat(1 << 20);
    writeFileAtomic(file, big);
    expect(fs.readFileSync(file, 'utf8')).toBe(big);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['a.json']);
  });

  it('honours the mode, whatever the umask', () => {
    const file = path.join(dir, 'k');
    const old = process.umask(0o077);
    try {
      writeFileAtomic(file, 's', 0o644);
      expect(fs.statSync(file).mode & 0o777).toBe(0o644);
      writeFileAtomic(file, 's', 0o600);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    } finally { process.umask(old); }
  });

  it('on a failed rename keeps the old file and removes the temp file', () => {
    const file = path.join(dir, 'd');
    fs.mkdirSync(path.join(file, 'busy'), { recursive: true }); // rename over a non-empty directory fails
    expect(() => writeFileAtomic(file, 'new')).toThrow();
    expect(fs.readdirSync(dir)).toEqual(['d']);
    expect(fs.readdirSync(file)).toEqual(['busy']);
  });

  it('removeFileAndTemps removes the file and the temp file a writer killed before its rename left, nothing else', () => {
    const file = path.join(dir, 'e.json');
    // A writer that dies between its temp file and the rename: the rename never happens, nor the cleanup.
    const real = jest.requireActual<typeof fs>('fs'); // the module object itself: the import is a read-only view of it
    const rename = jest.spyOn(real, 'renameSync').mockImplementation(() => { throw new Error('killed'); });
    const rm = jest.spyOn(real, 'rmSync').mockImplementation(() => undefined);
    try {
      expect(() => writeFileAtomic(file, 'half')).toThrow('killed');
    } finally {
      rename.mockRestore();
      rm.mockRestore();
    }
    const left = fs.readdirSync(dir);
    expect(left).toEqual([expect.stringMatching(/^\.e\.json\.\d+\.[0-9a-z]+\.tmp$/)]);
    writeFileAtomic(file, 'whole');
    const foreign = ['.e.json.mine.tmp', 'e.json.bak', '.e.json2.1.abcdef01.tmp'];
    for (const f of foreign) fs.writeFileSync(path.join(dir, f), 'x');
    expect(removeFileAndTemps(file)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual([...foreign].sort());
    expect(removeFileAndTemps(file)).toBe(false);
    expect(removeFileAndTemps(path.join(dir, 'nodir', 'f'))).toBe(false);
  });
});
