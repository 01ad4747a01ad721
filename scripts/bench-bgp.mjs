#!/usr/bin/env node
// BGP re-peering bench (issue 6): time from a pod's eth0 IP change to BGP Established at the node
// speaker, p50 over N restarts (default 12). Needs root, frr and gobgpd (test/setup.sh), and a
// built dist/podlegs (npm run build). Usage:
//   node scripts/bench-bgp.mjs [--restarts N]        PODLEGS_BIN=/path/podlegs to use another binary
import { build } from 'esbuild';
import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.getuid?.() !== 0) { console.error('bench-bgp builds network namespaces: run it as root'); process.exit(1); }
const dir = mkdtempSync(join(tmpdir(), 'podlegs-bench-bgp-'));
try {
  const out = join(dir, 'bench.cjs');
  await build({ entryPoints: [join(root, 'test/lab/bgp-bench.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: out,
    define: { __dirname: JSON.stringify(join(root, 'test/lab')) }, logLevel: 'error' });
  const r = spawnSync(process.execPath, [out, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, PODLEGS_BIN: process.env.PODLEGS_BIN ?? join(root, 'dist/podlegs') } });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
