// Bundles the plugin into dist/podlegs: one executable file, with the two
// native pieces (netlink's prebuild and our netns addon) copied beside it.
//   node scripts/build.mjs [--entry FILE] [--out FILE] [--sourcemap]
// --sourcemap writes FILE.map beside the bundle (no comment in the bundle, whose bytes stay
// the same): npm run bench uses it to attribute a CPU profile to source modules.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, existsSync } from 'fs';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const entry = opt('--entry', join(root, 'plugin/main.ts'));
const outfile = opt('--out', join(root, 'dist/podlegs'));
const outdir = dirname(outfile);
const sourcemap = args.includes('--sourcemap');

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

// netlink's index also loads its nl80211 (240 KB of tables), generic-netlink and WireGuard
// modules, which podlegs never uses (overlay/kernel/kernel.ts speaks rtnetlink only); every
// plugin start paid ~20 ms to parse and run them. The bundle gets the index without them;
// touching one of their exports throws an error that says so, rather than being undefined.
const netlinkRtOnly = {
  name: 'netlink-rt-only',
  setup(b) {
    b.onLoad({ filter: /node_modules[\\/]netlink[\\/]dist[\\/]index\.js$/ }, (a) => {
      const dist = dirname(a.path);
      const unused = ['genl', 'nl80211', 'wg'];
      const names = new Set(unused);
      for (const m of unused) {
        for (const [, n] of readFileSync(join(dist, m, `${m}.js`), 'utf8').matchAll(/^exports\.(\w+) = /gm)) names.add(n);
      }
      const kept = readFileSync(a.path, 'utf8').split('\n').filter((l) =>
        !/require\("\.\/(genl|nl80211|wg)\//.test(l) && !/^exports\.(genl|nl80211|wg) = (genl|nl80211|wg);$/.test(l));
      const guard = `for (const n of ${JSON.stringify([...names])}) Object.defineProperty(exports, n, { configurable: true, get() { `
        + 'throw new Error(`netlink.${n} is not in the podlegs bundle (rtnetlink only, see scripts/build.mjs)`); } });';
      return { contents: `${kept.join('\n')}\n${guard}\n`, loader: 'js' };
    });
  },
};

// Outputs are replaced by rename, never rewritten in place: a plugin process running from
// dist/ has the .node files mapped, and truncating them under it crashes it (SIGSEGV/SIGBUS).
const tmpOf = (file) => `${file}.tmp-${process.pid}`;

mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: tmpOf(outfile),
  minify: true,
  legalComments: 'none',
  banner: { js: '#!/usr/bin/env node' },
  plugins: [netlinkBinding, netlinkRtOnly],
  logLevel: 'warning',
  sourcemap: sourcemap ? 'external' : false,
});
chmodSync(tmpOf(outfile), 0o755);
if (sourcemap) renameSync(`${tmpOf(outfile)}.map`, `${outfile}.map`);
renameSync(tmpOf(outfile), outfile);

// @kubernetes/client-node (for kubeconfigs with exec/auth-provider credentials) lives in its
// own file beside the executable, loaded only when such a kubeconfig is met: inlined, it
// made every CNI call parse ~4 MB.
if (!opt('--entry')) {
  const side = join(outdir, 'podlegs-kubeauth.js');
  await build({
    entryPoints: [join(root, 'plugin/k8s/client-node-auth.ts')], bundle: true, platform: 'node', target: 'node20',
    format: 'cjs', outfile: tmpOf(side), minify: true, legalComments: 'none', logLevel: 'error',
  });
  renameSync(tmpOf(side), side);
}

const natives = [
  [join(root, 'node_modules/netlink/prebuilds', `linux-${process.arch}`, 'node.napi.node'), 'netlink.node'],
  [join(root, 'build/Release/podlegs_netns.node'), 'podlegs_netns.node'],
];
for (const [src, name] of natives) {
  if (!existsSync(src)) throw new Error(`missing native piece ${src} (run npm install)`);
  copyFileSync(src, tmpOf(join(outdir, name)));
  renameSync(tmpOf(join(outdir, name)), join(outdir, name));
}
