#!/usr/bin/env node
// Kubernetes-mode benchmark: bundles scripts/bench/k8s-bench.ts and runs it (as root).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'podlegs-bench-k8s-'));
try {
  const out = join(dir, 'k8s-bench.js');
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--entry', join(root, 'scripts/bench/k8s-bench.ts'), '--out', out], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
  const r = spawnSync(process.execPath, [out], { stdio: 'inherit', env: { PODLEGS_BIN: join(root, 'dist/podlegs'), ...process.env } });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
