#!/usr/bin/env node
// VRRP failover benchmark: bundles scripts/bench/failover-bench.ts and runs it (as root; needs
// keepalived, test/setup.sh installs it, and a built dist/podlegs). Usage:
//   node scripts/bench-failover.mjs [--rounds N]        PODLEGS_BIN=/path/podlegs to use another binary
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (process.getuid?.() !== 0) { console.error('bench-failover builds network namespaces: run it as root'); process.exit(1); }
const dir = mkdtempSync(join(tmpdir(), 'podlegs-bench-failover-'));
try {
  const out = join(dir, 'failover-bench.js');
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--entry', join(root, 'scripts/bench/failover-bench.ts'), '--out', out], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
  const r = spawnSync(process.execPath, [out, ...process.argv.slice(2)], { stdio: 'inherit', env: { PODLEGS_BIN: join(root, 'dist/podlegs'), ...process.env } });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
