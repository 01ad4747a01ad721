// Bundles the plugin into dist/podlegs: one executable file, with the two
// native pieces (netlink's prebuild and our netns addon) copied beside it.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, existsSync } from 'fs';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const entry = opt('--entry', join(root, 'plugin/main.ts'));
const outfile = opt('--out', join(root, 'dist/podlegs'));
const outdir = dirname(outfile);

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

mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile,
  minify: true,
  legalComments: 'none',
  banner: { js: '#!/usr/bin/env node' },
  plugins: [netlinkBinding],
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);

const natives = [
  [join(root, 'node_modules/netlink/prebuilds', `linux-${process.arch}`, 'node.napi.node'), 'netlink.node'],
  [join(root, 'build/Release/podlegs_netns.node'), 'podlegs_netns.node'],
];
for (const [src, name] of natives) {
  if (!existsSync(src)) throw new Error(`missing native piece ${src} (run npm install)`);
  copyFileSync(src, join(outdir, name));
}
