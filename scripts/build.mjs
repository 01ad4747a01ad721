// Bundles the plugin into dist/: a tiny loader dist/podlegs (scripts/loader.js) that runs the
// bundle dist/podlegs.js with the V8 code cache dist/podlegs.jsc, and beside them the native
// pieces (netlink's prebuild and our netns addon) and podlegs-kubeauth.js.
//   node scripts/build.mjs [--entry FILE] [--out FILE] [--sourcemap] [--bundle-only] [--no-code-cache]
// --out FILE       the executable (default dist/podlegs); the bundle is FILE.js, the cache FILE.jsc
// --bundle-only    FILE is the bundle itself, executable (#!/usr/bin/env node), no loader or
//                  cache: what build-standalone.mjs puts into the single executable. --entry
//                  (another program than the plugin, e.g. the demo) implies it.
// --no-code-cache  no podlegs.jsc (faster build; the plugin starts ~30-60 ms slower)
// --sourcemap writes FILE.js.map (with --bundle-only FILE.map) beside the bundle (no comment in
// the bundle, whose bytes stay the same): npm run bench uses it to attribute a CPU profile to
// source modules.
//
// Why a loader: every CNI call is a fresh node process. Compiling the bundle, and then each
// function on its first call, was ~45 ms of every call. The code cache holds the bytecode of
// every function the training runs below executed (a CNI VERSION, an ADD that fails before
// touching the kernel, and, in a private network namespace that vanishes afterwards, a real
// 3-leg ADD and its DEL); V8 takes it instead of compiling. It is only valid for this exact
// bundle and this node: the loader checks both (build id, node version) and V8 checks its own
// version and flags; on any mismatch the bundle is compiled as before, correct, just slower.
import { build } from 'esbuild';
import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync,
} from 'fs';
import { tmpdir } from 'os';
import { basename, dirname, join } from 'path';
import { fileURLToPath } from 'url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

// Re-entry of this script inside a private network namespace (see trainCodeCache).
if (args[0] === '--code-cache-train-netns') {
  try {
    await trainInNetns(JSON.parse(args[1]));
    process.exit(0);
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
}

const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const entry = opt('--entry', join(root, 'plugin/cli/main.ts'));
const outfile = opt('--out', join(root, 'dist/podlegs'));
const outdir = dirname(outfile);
const sourcemap = args.includes('--sourcemap');
const bundleOnly = args.includes('--bundle-only') || opt('--entry') !== undefined;
const withCache = !bundleOnly && !args.includes('--no-code-cache');
const bundleName = bundleOnly ? basename(outfile) : `${basename(outfile)}.js`;
const cacheName = `${basename(outfile)}.jsc`;

// netlink loads its binding with node-gyp-build relative to its package dir;
// in the bundle it must come from the file next to the executable instead.
// createRequire: in a single executable application (build:standalone) the
// bundle's own require loads built-ins only; __filename/__dirname there are the
// executable's path and directory.
const netlinkBinding = {
  name: 'netlink-binding',
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/]netlink[\\/]dist[\\/]raw\.js$/ }, (a) => ({
      contents: readFileSync(a.path, 'utf8').replace(
        "require('node-gyp-build')(__dirname + '/..')",
        "require('module').createRequire(__filename)(require('path').join(__dirname, 'netlink.node'))"),
      loader: 'js',
    }));
  },
};

// winston's level table (logform/levels) loads logform's colorizer, which loads @colors/colors
// and with it node's tty module and a terminal probe: ~5 ms of every CNI call that logs, for
// colours podlegs never uses (JSON lines to a file). The colorizer gets @colors/colors behind a
// proxy that loads it on first use; the one setting made at load (colors.enabled = true) is
// kept and applied then.
const lazyColors = {
  name: 'lazy-colors',
  setup(b) {
    b.onResolve({ filter: /^@colors\/colors\/safe$/ }, (a) => (a.namespace === 'file' && /[\\/]logform[\\/]colorize\.js$/.test(a.importer)
      ? { path: a.importer, namespace: 'lazy-colors' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-colors' }, (a) => ({
      resolveDir: dirname(a.path),
      loader: 'js',
      contents: `let real; const pending = {};
const load = () => { if (!real) { real = require('@colors/colors/safe'); Object.assign(real, pending); } return real; };
module.exports = new Proxy({}, {
  get: (_, k) => load()[k],
  set: (_, k, v) => { if (real) real[k] = v; else pending[k] = v; return true; },
  has: (_, k) => k in load(),
});`,
    }));
  },
};

// readable-stream (winston's streams) loads node's own stream module only to offer it as
// `.Stream` and as its base class, and its pipe() compares the destination with
// process.stdout, which creates process.stdout: on a runtime's stdout pipe that is a
// net.Socket, i.e. node's net and stream modules, ~3 ms of every CNI call that logs. The bundle
// takes readable-stream's own browser variants of those two files (its package.json "browser"
// field: EventEmitter as the base, its own Readable as .Stream) and tells stdio apart by fd,
// which creates nothing. podlegs never pipes a log stream to stdout.
const leanStreams = {
  name: 'lean-streams',
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/]readable-stream[\\/](readable|lib[\\/]internal[\\/]streams[\\/]stream)\.js$/ }, (a) => ({
      contents: readFileSync(a.path.replace(/\.js$/, '-browser.js'), 'utf8'), loader: 'js', resolveDir: dirname(a.path),
    }));
    b.onLoad({ filter: /node_modules[\\/]readable-stream[\\/]lib[\\/]_stream_readable\.js$/ }, (a) => {
      const src = readFileSync(a.path, 'utf8');
      const check = 'dest !== process.stdout && dest !== process.stderr';
      if (!src.includes(check)) throw new Error(`lean-streams: ${a.path} no longer has "${check}"`);
      return { contents: src.replace(check, 'dest.fd !== 1 && dest.fd !== 2'), loader: 'js' };
    });
  },
};

// @dabh/diagnostics (winston's debug logger, silent without DEBUG either way) loads its colour
// and formatting dependencies (colorspace, kuler, ...) unless NODE_ENV is "production": fixed
// here, it is the only NODE_ENV test in the bundle. (readable-stream's READABLE_STREAM=disable
// would drop its stream copy too, but it throws on node 20: "Cannot set property promises".)
const leanDeps = { 'process.env.NODE_ENV': '"production"' };

// Outputs are replaced by rename, never rewritten in place: a plugin process running from
// dist/ has the .node files mapped, and truncating them under it crashes it (SIGSEGV/SIGBUS).
// Everything is made in a staging directory inside outdir (same filesystem, so rename works;
// a directory, so copies of "every file beside the executable" skip it), the code cache is
// trained there, and the files are renamed into outdir at the end: natives first, the loader
// last. A plugin starting in between may pair a new bundle with an old cache: the build id
// check turns that into "no cache", never into a wrong one.
mkdirSync(outdir, { recursive: true });
const stage = mkdtempSync(join(outdir, '.build-'));
try {
  const bundle = join(stage, bundleName);
  // The build id (first line of the bundle): a hash of the rest, so identical sources give a
  // byte-identical bundle (npm run bench compares its profiling build with the measured one).
  const ID0 = '0'.repeat(16);
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: bundle,
    minify: true,
    legalComments: 'none',
    banner: { js: bundleOnly ? '#!/usr/bin/env node' : `//podlegs-bundle ${ID0}` },
    plugins: [netlinkBinding, lazyColors, leanStreams],
    define: leanDeps,
    logLevel: 'warning',
    sourcemap: sourcemap ? 'external' : false,
  });
  if (bundleOnly) {
    chmodSync(bundle, 0o755);
  } else {
    const text = readFileSync(bundle, 'utf8');
    const first = `//podlegs-bundle ${ID0}\n`;
    if (!text.startsWith(first)) throw new Error(`${bundle} does not start with the build id line`);
    const id = createHash('sha256').update(text.slice(first.length)).digest('hex').slice(0, 16);
    writeFileSync(bundle, `//podlegs-bundle ${id}\n${text.slice(first.length)}`);
    chmodSync(bundle, 0o644);
    // The loader, told the names of the bundle and cache beside it (so it may be renamed).
    const tmpl = readFileSync(join(root, 'scripts/loader.js'), 'utf8');
    const client = await thinClient();
    const CLIENT_LINE = 'runBundle(); // PODLEGS-CNI-CLIENT';
    const loader = tmpl.replace("const BUNDLE = 'podlegs.js';", `const BUNDLE = ${JSON.stringify(bundleName)};`)
      .replace("const CACHE = 'podlegs.jsc';", `const CACHE = ${JSON.stringify(cacheName)};`)
      .replace(CLIENT_LINE, () => client);
    if (!loader.includes(`const BUNDLE = ${JSON.stringify(bundleName)};`) || !loader.includes(`const CACHE = ${JSON.stringify(cacheName)};`)
      || !tmpl.includes(CLIENT_LINE)) {
      throw new Error('scripts/loader.js: the BUNDLE/CACHE/PODLEGS-CNI-CLIENT lines build.mjs fills in are not there');
    }
    // The loader reads the bundle as latin1 (the cheapest decode): it must be ASCII, which
    // esbuild's default charset guarantees by escaping everything else.
    if (/[^\x00-\x7f]/.test(text)) throw new Error(`${bundle} is not ASCII (the loader reads it as latin1)`);
    writeFileSync(join(stage, basename(outfile)), `${loader.trimEnd()}\n`, { mode: 0o755 });
    chmodSync(join(stage, basename(outfile)), 0o755);
  }

  // @kubernetes/client-node (for kubeconfigs with exec/auth-provider credentials) lives in its
  // own file beside the executable, loaded only when such a kubeconfig is met: inlined, it
  // made every CNI call parse ~4 MB.
  if (!opt('--entry')) {
    await build({
      entryPoints: [join(root, 'overlay/kube/client-node-auth.ts')], bundle: true, platform: 'node', target: 'node20',
      format: 'cjs', outfile: join(stage, 'podlegs-kubeauth.js'), minify: true, legalComments: 'none', logLevel: 'error',
    });
  }

  // The addon comes from `npm install` (node-gyp); when native/ or binding.gyp is newer (a merge
  // changed it), rebuild it first, as test/setup.sh does: dist/ must not ship a stale addon.
  const addon = join(root, 'build/Release/podlegs_netns.node');
  const addonSources = [join(root, 'binding.gyp'), ...readdirSync(join(root, 'native')).map((f) => join(root, 'native', f))];
  if (!existsSync(addon) || addonSources.some((f) => statSync(f).mtimeMs > statSync(addon).mtimeMs)) {
    process.stderr.write('build: native/ is newer than build/Release/podlegs_netns.node: npm run install (node-gyp)\n');
    const r = spawnSync('npm', ['run', '--silent', 'install'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('rebuilding the native addon failed (npm run install)');
  }

  const natives = [
    [join(root, 'node_modules/netlink/prebuilds', `linux-${process.arch}`, 'node.napi.node'), 'netlink.node'],
    [join(root, 'build/Release/podlegs_netns.node'), 'podlegs_netns.node'],
  ];
  for (const [src, name] of natives) {
    if (!existsSync(src)) throw new Error(`missing native piece ${src} (run npm install)`);
    copyFileSync(src, join(stage, name));
  }

  if (withCache) trainCodeCache(join(stage, basename(outfile)), join(stage, cacheName));
  // Whatever happened to the cache, the loader and bundle must answer a CNI VERSION.
  if (!bundleOnly) smokeTest(join(stage, basename(outfile)));

  const order = [...natives.map(([, n]) => n), 'podlegs-kubeauth.js', bundleName, ...(sourcemap ? [`${bundleName}.map`] : []), cacheName,
    ...(bundleOnly ? [] : [basename(outfile)])];
  for (const name of order) {
    if (existsSync(join(stage, name))) renameSync(join(stage, name), join(outdir, name));
    // No cache made this time: an old one must not stay beside the new bundle (it would be
    // refused anyway, build id; this keeps dist/ honest).
    else if (name === cacheName && !bundleOnly) rmSync(join(outdir, name), { force: true });
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}

// ---- the thin client ----

// The loader's last line is replaced by the thin client (plugin/cni-client/loader-entry.ts): a
// CNI call goes to the node agent first, and the loader runs the bundle only when no agent takes
// it. Plain node built-ins, a few KB: node compiles it itself on every call (no code cache).
async function thinClient() {
  const r = await build({
    entryPoints: [join(root, 'plugin/cni-client/loader-entry.ts')], bundle: true, platform: 'node', target: 'node20',
    format: 'iife', minify: true, legalComments: 'none', logLevel: 'warning', write: false,
  });
  const code = r.outputFiles[0].text.trim();
  if (/\brequire\("(?!(fs|net)")/.test(code)) throw new Error('the thin client requires more than fs and net');
  return code;
}

// ---- code cache training ----

/** The training runs (see the header); writes cache beside loader, or warns and writes none. */
function trainCodeCache(loader, cache) {
  const work = mkdtempSync(join(tmpdir(), 'podlegs-code-cache-'));
  const say = (m) => process.stderr.write(`build: code cache: ${m}\n`);
  try {
    // A clean environment: NODE_OPTIONS could change V8's flags, and V8 refuses a cache made
    // under other flags than the plugin runs with.
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PODLEGS_CODE_CACHE_WRITE: cache };
    const run = (cniEnv, input, what) => {
      const r = spawnSync(process.execPath, [loader], { env: { ...env, ...cniEnv }, input, encoding: 'utf8', timeout: 60_000 });
      if (r.error || r.signal) throw new Error(`${what}: ${r.error?.message ?? r.signal}`);
      return r;
    };
    run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}', 'CNI VERSION');
    // An ADD as far as it goes without the kernel: env, config, log, node lock, then the pod's
    // netns does not exist (CNI error 3). Touches nothing but the files of `work`.
    const conf = trainingConf(work, join(work, 'no-such-netns'));
    const early = run({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'podlegs-build', CNI_NETNS: join(work, 'no-such-netns'), CNI_IFNAME: 'eth0', CNI_PATH: work },
      JSON.stringify(conf), 'ADD without netns');
    if (!/"code":3\b/.test(early.stdout)) say(`note: the ADD without netns answered ${early.stdout.trim().slice(0, 200)} (expected error 3)`);

    // A real ADD and DEL, in a network namespace of its own (and a user namespace when not
    // root): the root namespace is never touched, and the kernel removes it all when the last
    // process in it exits.
    const userns = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
    const job = JSON.stringify({ loader, cache, work });
    const r = spawnSync('unshare', [...userns, '--net', '--', process.execPath, fileURLToPath(import.meta.url), '--code-cache-train-netns', job],
      { env, encoding: 'utf8', timeout: 60_000 });
    let netns = 'a real ADD and DEL in a private network namespace';
    if (r.error || r.status !== 0) {
      netns = `no real ADD (${(r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`).slice(0, 300)})`;
    }

    // The cache must be taken by V8 in a plain run; else there is no point shipping it.
    const used = smokeTest(loader);
    if (!/code cache .*: used$/m.test(used)) {
      rmSync(cache, { force: true });
      say(`not used by a plain run (${used.trim()}), building without it`);
      return;
    }
    say(`${(statSync(cache).size / 1024).toFixed(0)} KB from a CNI VERSION, an ADD without netns and ${netns}`);
  } catch (e) {
    rmSync(cache, { force: true });
    say(`none, training failed: ${e.message}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs a CNI VERSION through the loader; throws unless it answers. Returns its stderr (cache use). */
function smokeTest(loader) {
  const r = spawnSync(process.execPath, [loader], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: 'VERSION', PODLEGS_CODE_CACHE_DEBUG: '1' },
    input: '{"cniVersion":"1.0.0"}', encoding: 'utf8', timeout: 60_000,
  });
  let ok = false;
  try { ok = r.status === 0 && Array.isArray(JSON.parse(r.stdout).supportedVersions); } catch { /* not JSON */ }
  if (!ok) throw new Error(`${loader} does not answer a CNI VERSION (exit ${r.status ?? r.signal ?? r.error?.message}): ${`${r.stdout}${r.stderr}`.trim().slice(0, 800)}`);
  return r.stderr;
}

/** A static-mode 3-leg configuration after a ptp-like prevResult, like npm run bench's. */
function trainingConf(work, netns) {
  return {
    cniVersion: '1.0.0', name: 'podlegs-build', type: 'podlegs',
    // Never an agent of this machine: the training runs must run in-process.
    agent: { socket: join(work, 'no-agent.sock') },
    underlay: { interface: 'ul0' }, stateDir: join(work, 'state'),
    registry: { type: 'file', path: join(work, 'registry') },
    log: { file: join(work, 'podlegs.log'), level: 'info' },
    networks: { a: { vni: 100 }, b: { vni: 200 }, c: { vni: 300 } },
    legs: [
      { network: 'a', interface: 'net1', ips: ['10.1.0.12/24'] },
      { network: 'b', interface: 'net2', ips: ['10.2.0.12/24'] },
      { network: 'c', interface: 'net3', ips: ['10.3.0.12/24'] },
    ],
    prevResult: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '02:42:0a:f4:00:05', sandbox: netns }],
      ips: [{ address: '10.244.0.5/24', gateway: '10.244.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.0.1' }],
    },
  };
}

/** Inside `unshare --net`: an underlay veth, a pod netns held by a sleeping process, ADD, DEL. */
async function trainInNetns({ loader, cache, work }) {
  const ip = (...a) => {
    const r = spawnSync('ip', a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
  };
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1');
  ip('addr', 'add', '192.0.2.1/24', 'dev', 'ul0');
  ip('link', 'set', 'ul0', 'up');
  ip('link', 'set', 'ul1', 'up');
  const holder = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
  try {
    const netns = `/proc/${holder.pid}/ns/net`;
    const self = readlinkSync('/proc/self/ns/net');
    for (let i = 0; ; i++) {
      let cur;
      try { cur = readlinkSync(netns); } catch { cur = self; }
      if (cur !== self) break;
      if (i > 500 || holder.exitCode !== null) throw new Error('the pod netns holder (unshare --net sleep) did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    const conf = JSON.stringify(trainingConf(work, netns));
    for (const command of ['ADD', 'DEL']) {
      const r = spawnSync(process.execPath, [loader], {
        env: { PATH: process.env.PATH, PODLEGS_CODE_CACHE_WRITE: cache, CNI_COMMAND: command, CNI_CONTAINERID: 'podlegs-build', CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: work },
        input: conf, encoding: 'utf8', timeout: 30_000,
      });
      if (r.status !== 0) throw new Error(`${command} in the private netns failed (exit ${r.status}): ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
    }
  } finally {
    holder.kill('SIGKILL');
  }
}
