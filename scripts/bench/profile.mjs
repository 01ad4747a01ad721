// CPU profile of one plugin run, attributed to the bundled packages.
//
// To know which source module a minified function of dist/podlegs.js comes from we need a
// source map. dist/ has none, so we rebuild the bundle with `scripts/build.mjs
// --sourcemap` (same options, bytes unchanged, map beside it) into a temp dir (the caller
// checks and says whether it is byte-identical to the measured bundle) and profile that
// copy with `node --cpu-prof`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';

/**
 * Builds outDir/podlegs (the loader) + podlegs.js (the bundle) + podlegs.js.map + code cache +
 * natives. Returns { exe, bundle, map } or { error }.
 */
export function buildMapped(root, outDir) {
  const exe = join(outDir, 'podlegs');
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--out', exe, '--sourcemap'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return { error: `scripts/build.mjs --sourcemap failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n')[0]}` };
  const bundle = bundleOf(exe);
  return { exe, bundle, map: `${bundle}.map` };
}

/** The bundle an executable runs: podlegs.js beside the loader, or the executable itself (older builds). */
export const bundleOf = (exe) => (existsSync(`${exe}.js`) ? `${exe}.js` : exe);

// ---- source map lookup (VLQ) ----

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VAL = new Map([...B64].map((c, i) => [c, i]));

function decodeMappings(mappings) {
  const lines = [];
  let src = 0;
  let srcLine = 0;
  let srcCol = 0;
  let name = 0;
  for (const l of mappings.split(';')) {
    const segs = [];
    let col = 0;
    if (l) {
      for (const s of l.split(',')) {
        const v = [];
        let acc = 0;
        let shift = 0;
        for (const ch of s) {
          const d = B64_VAL.get(ch);
          acc += (d & 31) << shift;
          if (d & 32) shift += 5;
          else { v.push(acc & 1 ? -(acc >>> 1) : acc >>> 1); acc = 0; shift = 0; }
        }
        col += v[0];
        if (v.length > 1) { src += v[1]; srcLine += v[2]; srcCol += v[3]; }
        if (v.length > 4) name += v[4];
        segs.push([col, v.length > 1 ? src : -1, srcLine]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

function sourceLookup(mapFile) {
  const map = JSON.parse(readFileSync(mapFile, 'utf8'));
  const lines = decodeMappings(map.mappings);
  return (line, col) => {
    const segs = lines[line] ?? [];
    let lo = 0;
    let hi = segs.length - 1;
    let best = -1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (segs[m][0] <= col) { best = m; lo = m + 1; } else hi = m - 1;
    }
    return best >= 0 && segs[best][1] >= 0 ? { file: map.sources[segs[best][1]], line: segs[best][2] + 1 } : undefined;
  };
}

// ---- grouping packages by the project's direct dependencies ----

/** Maps every installed package to the direct dependency (of package.json) that pulls it in. */
function dependencyGroups(root) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const groupOf = new Map();
  const depsOf = (name) => {
    try {
      const p = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8'));
      return Object.keys(p.dependencies ?? {});
    } catch { return []; }
  };
  for (const direct of Object.keys(pkg.dependencies ?? {})) {
    const queue = [direct];
    while (queue.length) {
      const n = queue.shift();
      if (groupOf.has(n)) continue;
      groupOf.set(n, direct);
      queue.push(...depsOf(n));
    }
  }
  // winston-transport and triple-beam are declared directly but belong to logging.
  for (const [n, g] of groupOf) if (['winston-transport', 'triple-beam'].includes(g)) groupOf.set(n, 'winston');
  return groupOf;
}

const LABEL = {
  compile: 'compile the bundle (V8 parse or code cache, wrapSafe / vm.Script)',
  lazy: 'esbuild require/import helpers (lazy compile of each module on first use)',
  toplevel: 'bundle top level (hoisted ESM module bodies, lazy compiles they trigger)',
  node: 'Node.js bootstrap and internals',
  idle: 'idle (waiting on the kernel, files, child processes)',
  gc: 'garbage collection',
  program: 'V8/native, unattributed',
};

/**
 * Self time per group. Frames of Node's internals and natives called (transitively) from a
 * bundled package are charged to that package: "time spent because of X".
 */
export function attribute(profileFile, bundleFile, mapFile, root) {
  const p = JSON.parse(readFileSync(profileFile, 'utf8'));
  const lookup = sourceLookup(mapFile);
  const groups = dependencyGroups(root);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const url = `file://${bundleFile}`;
  const memo = new Map();
  // The loader names its script after the bundle's file name alone (see scripts/loader.js).
  const isBundle = (n) => n.callFrame.url === url || n.callFrame.url === bundleFile || n.callFrame.url === basename(bundleFile);
  const own = (n) => {
    const f = n.callFrame;
    if (isBundle(n)) {
      const src = lookup(f.lineNumber, f.columnNumber)?.file;
      if (!src) return f.lineNumber === 0 && f.columnNumber === 0 ? 'toplevel' : 'lazy';
      const m = src.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
      if (m) return `pkg:${groups.get(m[1]) ?? m[1]}`;
      return 'pkg:podlegs (plugin/, overlay/)';
    }
    if ((f.url.startsWith('node:') && f.functionName === 'wrapSafe') || (f.url === 'node:vm' && f.functionName === 'Script')) return 'compile';
    return undefined;
  };
  const groupOf = (id) => {
    if (memo.has(id)) return memo.get(id);
    const n = byId.get(id);
    const name = n.callFrame.functionName;
    let g;
    if (name === '(idle)') g = 'idle';
    else if (name === '(garbage collector)') g = 'gc';
    else if (name === '(program)' || name === '(root)') g = 'program';
    else {
      g = own(n);
      if (!g) {
        // Node internal or native: charge the nearest bundled caller, else Node itself.
        let q = parent.get(id);
        while (q !== undefined && !own(byId.get(q))) q = parent.get(q);
        g = q !== undefined ? own(byId.get(q)) : 'node';
      }
    }
    memo.set(id, g);
    return g;
  };
  const self = new Map();
  const fnSelf = new Map();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const g = groupOf(p.samples[i]);
    const dt = p.timeDeltas[i] / 1000;
    self.set(g, (self.get(g) ?? 0) + dt);
    total += dt;
    // The function itself, or for Node/native frames, the nearest bundled caller.
    let id = p.samples[i];
    while (id !== undefined && !isBundle(byId.get(id))) id = parent.get(id);
    if (id !== undefined) fnSelf.set(id, (fnSelf.get(id) ?? 0) + dt);
  }
  const where = (id) => {
    const f = byId.get(id).callFrame;
    const src = lookup(f.lineNumber, f.columnNumber);
    const file = src ? relative(root, resolve(dirname(mapFile), src.file)).replace(/^.*node_modules\//, '')
      : f.lineNumber === 0 && f.columnNumber === 0 ? '(bundle top level)' : '(esbuild require/import helper)';
    return `${file}${src ? `:${src.line}` : ''}`;
  };
  const byFn = new Map();
  for (const [id, ms] of fnSelf) { const k = where(id); byFn.set(k, (byFn.get(k) ?? 0) + ms); }
  const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 12);
  const rows = [...self].sort((a, b) => b[1] - a[1]).map(([g, ms]) => [g.startsWith('pkg:') ? `package ${g.slice(4)} (incl. Node/native calls it makes)` : LABEL[g] ?? g, ms]);
  return { total, wall: (p.endTime - p.startTime) / 1000, rows, top };
}

export const newestProfile = (dir) => {
  const f = readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')).sort().pop();
  return f ? join(dir, f) : undefined;
};
