// The agent benchmark drives the real TypeScript modules (lab harness, file
// registry, kernel adapter, agent): they are bundled here with esbuild into
// node_modules/.cache (so `require('netlink')` etc. resolve from the project's
// node_modules), with the netns addon copied beside the bundle.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT_DIR = join(ROOT, 'node_modules', '.cache', 'podlegs-bench-agent');
export const LIB = join(OUT_DIR, 'lib.cjs');

const ENTRY = `
export { Lab, leakCheck } from './test/lab/lab';
export { FileRegistry } from './overlay/registry/file-registry';
export { Kernel, ZERO_MAC } from './overlay/kernel/kernel';
export { Agent } from './overlay/agent/agent';
export { desiredState } from './overlay/agent/desired';
export { readSegments, planFdb, applyFdb } from './overlay/agent/reconciler';
`;

/** Bundles the modules the benchmark needs and returns them (CommonJS). */
export async function loadLib() {
  mkdirSync(OUT_DIR, { recursive: true });
  await build({
    stdin: { contents: ENTRY, resolveDir: ROOT, loader: 'ts', sourcefile: 'bench-agent-entry.ts' },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: LIB,
    packages: 'external', logLevel: 'warning',
  });
  copyFileSync(join(ROOT, 'build', 'Release', 'podlegs_netns.node'), join(OUT_DIR, 'podlegs_netns.node'));
  return createRequire(import.meta.url)(LIB);
}
