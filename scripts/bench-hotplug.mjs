#!/usr/bin/env node
// Hot-plug benchmark: bundles scripts/bench/hotplug-bench.ts and runs it (as root).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'podlegs-bench-hotplug-'));
try {
  const out = join(dir, 'hotplug-bench.js');
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--entry', join(root, 'scripts/bench/hotplug-bench.ts'), '--out', out], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
  const r = spawnSync(process.execPath, [out], { stdio: 'inherit', env: { PODLEGS_BIN: join(root, 'dist/podlegs'), ...process.env } });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
