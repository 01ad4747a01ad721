// The node lock against real processes: flock(2) held by a child, the child
// SIGKILLed, stale files from the old PID-file lock, mutual exclusion.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LockTimeout, withNodeLock } from '../../overlay/node-lock';

import { buildSync } from 'esbuild';

const root = path.join(__dirname, '..', '..');
// Children run the real node-lock module: bundled once, next to a copy of the addon (where netns.ts looks).
const bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-lockmod-'));
beforeAll(() => {
  buildSync({ entryPoints: [path.join(root, 'overlay', 'node-lock.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: path.join(bundleDir, 'node-lock.js') });
  fs.copyFileSync(path.join(root, 'build', 'Release', 'podlegs_netns.node'), path.join(bundleDir, 'podlegs_netns.node'));
});
afterAll(() => fs.rmSync(bundleDir, { recursive: true, force: true }));
const tsNode = (code: string, args: string[]): ChildProcess =>
  spawn(process.execPath, ['-e', code.replace("'./overlay/node-lock'", JSON.stringify(path.join(bundleDir, 'node-lock.js'))), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = (c: ChildProcess): Promise<number | null> => new Promise((r) => c.on('exit', (code) => r(code)));
const lineFrom = (c: ChildProcess): Promise<string> => new Promise((r) => c.stdout!.once('data', (d: Buffer) => r(d.toString().trim())));

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-lock-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a lock held by a SIGKILLed process is taken at once by the next caller', async () => {
  const holder = tsNode(`require('./overlay/node-lock').withNodeLock(process.argv[1], () => { console.log('held'); setInterval(() => {}, 1000); return new Promise(() => {}); })`, [dir]);
  expect(await lineFrom(holder)).toBe('held');
  // While it lives, the lock is really held: a short wait times out with a message naming the file.
  await expect(withNodeLock(dir, async () => 1, 300)).rejects.toThrow(new LockTimeout(`node lock ${path.join(dir, 'node.lock')} still held by another process after 300 ms`));
  holder.kill('SIGKILL');
  await exited(holder);
  // Taken at once: well within the first poll intervals, not after any timeout-based takeover.
  await expect(withNodeLock(dir, async () => 'mine', 1000)).resolves.toBe('mine');
  expect(fs.existsSync(path.join(dir, 'node.lock'))).toBe(true); // never unlinked
}, 60_000);

test('an empty or stale lock file left by the old PID-file lock does not wedge anything', async () => {
  fs.writeFileSync(path.join(dir, 'node.lock'), '');
  await expect(withNodeLock(dir, async () => 'a', 1000)).resolves.toBe('a');
  fs.writeFileSync(path.join(dir, 'node.lock'), String(process.pid)); // a live PID, as the old lock would read it
  await expect(withNodeLock(dir, async () => 'b', 1000)).resolves.toBe('b');
});

test('two processes are never inside at once (counter file)', async () => {
  const counter = path.join(dir, 'counter');
  fs.writeFileSync(counter, '0');
  // Each round: read, yield to the event loop, check nobody else is inside, write back +1.
  const worker = `
    const fs = require('fs'); const { withNodeLock } = require('./overlay/node-lock');
    const [dir, counter, inside] = process.argv.slice(1);
    (async () => { for (let i = 0; i < 20; i++) await withNodeLock(dir, async () => {
      if (fs.existsSync(inside)) throw new Error('two inside at once');
      fs.writeFileSync(inside, String(process.pid));
      const n = Number(fs.readFileSync(counter, 'utf8'));
      await new Promise((r) => setTimeout(r, 2));
      fs.writeFileSync(counter, String(n + 1));
      fs.rmSync(inside);
    }, 120_000); })().catch((e) => { console.error(e); process.exit(3); });`;
  const kids = Array.from({ length: 4 }, () => tsNode(worker, [dir, counter, path.join(dir, 'inside')]));
  expect(await Promise.all(kids.map(exited))).toEqual([0, 0, 0, 0]);
  expect(Number(fs.readFileSync(counter, 'utf8'))).toBe(80);
}, 180_000);
