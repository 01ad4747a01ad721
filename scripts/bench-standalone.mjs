#!/usr/bin/env node
// Size and start-up time of the standalone executable (dist/standalone/podlegs,
// a Node single executable application) against `node dist/podlegs`, for a CNI
// VERSION call: the cheapest complete plugin invocation, so the figure is the
// start-up cost every ADD/DEL/CHECK pays. Runs alternate between the two
// (drift hits both alike); one warm-up run each is not counted. Prints figures,
// never a verdict. Needs no root and touches nothing.
//   node scripts/bench-standalone.mjs [--runs N] [--build] [--json]
// From another script: import { benchStandalone } from './bench-standalone.mjs'.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STANDALONE = join(ROOT, 'dist/standalone/podlegs');
const BUNDLE = join(ROOT, 'dist/podlegs');
const STDIN = '{"cniVersion":"1.0.0"}';

const quantile = (values, q) => {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};

function once(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input: STDIN, env: { CNI_COMMAND: 'VERSION', PATH: process.env.PATH }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 || !r.stdout.includes('supportedVersions')) {
    throw new Error(`${cmd} ${args.join(' ')}: CNI VERSION failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
  }
  return ms;
}

/** Measures both variants; returns rows {variant, bytes, runs, medianMs, p90Ms, minMs}. */
export function benchStandalone({ runs = 30, build = false } = {}) {
  if (!Number.isInteger(runs) || runs < 20) throw new Error('--runs must be an integer of at least 20');
  if (build || !existsSync(STANDALONE)) {
    const b = spawnSync(process.execPath, [join(ROOT, 'scripts/build-standalone.mjs')], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build:standalone failed');
  }
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: npm run build`);
  const variants = [
    { variant: 'dist/standalone/podlegs (SEA)', cmd: STANDALONE, args: [], bytes: statSync(STANDALONE).size },
    { variant: 'node dist/podlegs', cmd: process.execPath, args: [BUNDLE], bytes: statSync(BUNDLE).size },
  ];
  const samples = variants.map(() => []);
  for (const v of variants) once(v.cmd, v.args); // warm-up (page cache)
  for (let i = 0; i < runs; i++) {
    // Alternate the order every run.
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const j of order) samples[j].push(once(variants[j].cmd, variants[j].args));
  }
  return variants.map((v, j) => ({
    variant: v.variant,
    bytes: v.bytes,
    runs,
    medianMs: quantile(samples[j], 0.5),
    p90Ms: quantile(samples[j], 0.9),
    minMs: Math.min(...samples[j]),
  }));
}

/** The rows as a text table (sizes in MB; the bundle's size excludes node itself). */
export function formatStandalone(rows) {
  const header = ['CNI VERSION start-up', 'size MB', 'runs', 'median ms', 'p90 ms', 'min ms'];
  const cells = rows.map((r) => [r.variant, (r.bytes / 1048576).toFixed(1), String(r.runs), r.medianMs.toFixed(1), r.p90Ms.toFixed(1), r.minMs.toFixed(1)]);
  const all = [header, ...cells];
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...cells.map(line),
    `(size of node dist/podlegs is the bundle only; it also needs ${process.execPath} at ${(statSync(process.execPath).size / 1048576).toFixed(1)} MB)`].join('\n');
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--runs');
  const runs = i >= 0 ? Number(argv[i + 1]) : 30;
  const rows = benchStandalone({ runs, build: argv.includes('--build') });
  process.stdout.write(argv.includes('--json') ? `${JSON.stringify(rows, null, 2)}\n` : `${formatStandalone(rows)}\n`);
}
