// Builds dist/standalone/podlegs: a Node single executable application (SEA),
// so nodes need no Node.js. The CJS bundle (scripts/build.mjs) is turned into a
// blob (node --experimental-sea-config sea-config.json), injected into a copy of
// this node binary with postject, and the two native .node files are placed
// beside the executable, where the bundle loads them from (createRequire on the
// executable's directory). Output: dist/standalone/{podlegs,netlink.node,podlegs_netns.node,podlegs-kubeauth.js}.
//   node scripts/build-standalone.mjs [--no-strip]
import { execFileSync } from 'child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, statSync } from 'fs';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/standalone');
const exe = join(out, 'podlegs');
const sea = JSON.parse(readFileSync(join(root, 'sea-config.json'), 'utf8'));
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) throw new Error(`single executable applications need Node.js 20 or newer (this is ${process.version})`);

// 1. The bundle itself (not the dist/podlegs loader: the blob has its own code cache,
//    sea-config.json useCodeCache), with the natives copied beside it (= beside the executable).
rmSync(out, { recursive: true, force: true });
run(process.execPath, [join(root, 'scripts/build.mjs'), '--bundle-only', '--out', join(root, sea.main)]);

// 2. The preparation blob.
run(process.execPath, ['--experimental-sea-config', join(root, 'sea-config.json')]);

// 3. A copy of this node binary (debug symbols stripped when strip is there: ~12 MB less),
//    with the blob injected.
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
if (!process.argv.includes('--no-strip')) {
  try {
    execFileSync('strip', [exe], { stdio: 'ignore' });
  } catch {
    process.stderr.write('build-standalone: strip not available, keeping debug symbols\n');
  }
}
const postject = join(root, 'node_modules/postject/dist/cli.js');
if (!existsSync(postject)) throw new Error('postject is missing: npm install');
execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', join(root, sea.output), '--sentinel-fuse', FUSE], {
  cwd: root,
  // postject warns about ELF notes it cannot name on Debian's node; only failures matter.
  stdio: ['ignore', 'ignore', 'pipe'],
});
rmSync(join(root, sea.main), { force: true });
rmSync(join(root, sea.output), { force: true });

// 4. Smoke test: the CLI and a CNI VERSION call, from the executable alone.
const version = execFileSync(exe, ['version'], { encoding: 'utf8' }).trim();
const cni = execFileSync(exe, [], { input: '{"cniVersion":"1.0.0"}', env: { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
if (!JSON.parse(cni).supportedVersions) throw new Error(`unexpected CNI VERSION output: ${cni}`);
const mb = (f) => (statSync(f).size / 1048576).toFixed(1);
process.stdout.write(`${exe}: ${mb(exe)} MB (+ netlink.node, podlegs_netns.node); ${version}\n`);
