#!/usr/bin/env node
// Leg guard benchmark: bundles scripts/bench/guard-bench.ts and runs it (as root; needs
// iperf3, test/setup.sh installs it, and a built dist/podlegs). Usage:
//   node scripts/bench-guard.mjs [--rounds N] [--seconds S] [--adds N]   PODLEGS_BIN=/path/podlegs for another binary
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (process.getuid?.() !== 0) { console.error('bench-guard builds network namespaces: run it as root'); process.exit(1); }
const dir = mkdtempSync(join(tmpdir(), 'podlegs-bench-guard-'));
try {
  const out = join(dir, 'guard-bench.js');
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--entry', join(root, 'scripts/bench/guard-bench.ts'), '--out', out], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
  const r = spawnSync(process.execPath, [out, ...process.argv.slice(2)], { stdio: 'inherit', env: { PODLEGS_BIN: join(root, 'dist/podlegs'), ...process.env } });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
