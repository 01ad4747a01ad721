// The layout rules (docs/DESIGN.md "Layout"): no import cycle between files, none between
// folders (a folder is a directory; its files' imports are its edges), and overlay/ never
// imports plugin/. Imports are read with TypeScript's own scanner: static, `import type`,
// `export … from`, dynamic `import()` and `require()` all count; comments do not.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

type Graph = Map<string, Set<string>>;

const ROOT = path.join(__dirname, '../..');

/** Relative specifiers of one source text, in order. */
function specifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** File → files it imports (repo-relative paths); a relative import that resolves to nothing is a problem. */
function importGraph(tops: string[]): { graph: Graph; unresolved: string[] } {
  const graph: Graph = new Map();
  const unresolved: string[] = [];
  for (const file of tops.flatMap((t) => tsFiles(path.join(ROOT, t)))) {
    const from = path.relative(ROOT, file);
    const to = new Set<string>();
    for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
      const base = path.join(path.dirname(file), spec).replace(/\.js$/, '');
      const hit = [base, `${base}.ts`, path.join(base, 'index.ts')].find((c) => c.endsWith('.ts') && fs.existsSync(c));
      if (hit) to.add(path.relative(ROOT, hit));
      else unresolved.push(`${from}: ${spec}`);
    }
    graph.set(from, to);
  }
  return { graph, unresolved };
}

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
function cycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** Folder → folders its files import, and for each folder edge the file imports behind it. */
function folderGraph(graph: Graph): { folders: Graph; why: Map<string, string[]> } {
  const folders: Graph = new Map();
  const why = new Map<string, string[]>();
  for (const [from, tos] of graph) {
    const a = path.dirname(from);
    if (!folders.has(a)) folders.set(a, new Set());
    for (const to of tos) {
      const b = path.dirname(to);
      if (a === b) continue;
      folders.get(a)!.add(b);
      const key = `${a} -> ${b}`;
      why.set(key, [...(why.get(key) ?? []), `${from} -> ${to}`]);
    }
  }
  return { folders, why };
}

/** A cycle explained: every edge inside it with the imports that make it. */
function explain(scc: string[], why: Map<string, string[]>): string {
  const inside = [...why].filter(([k]) => { const [a, b] = k.split(' -> '); return scc.includes(a) && scc.includes(b); });
  return `${scc.join(' <-> ')}\n${inside.map(([k, v]) => `  ${k}\n    ${v.join('\n    ')}`).join('\n')}`;
}

const g = (edges: Record<string, string[]>): Graph => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

describe('the checks themselves', () => {
  it('read static, type-only, re-export, dynamic and require imports, and skip comments and packages', () => {
    const src = [
      "import { a } from './a';",
      "import type { B } from '../b';",
      "export * from './c';",
      "// import { no } from './commented';",
      "/* import('./block-commented') */",
      "import * as fs from 'fs';",
      "async function f() { return (await import('./d')).x + require('./e'); }",
      "type T = typeof import('./f');",
    ].join('\n');
    expect(specifiers(src)).toEqual(['./a', '../b', './c', './d', './e', './f']);
  });

  it('find a file cycle, a self-import, and none in a layered graph', () => {
    expect(cycles(g({ 'p/a.ts': ['p/b.ts'], 'p/b.ts': ['p/c.ts'], 'p/c.ts': ['p/a.ts'], 'p/d.ts': ['p/a.ts'] }))).toEqual([['p/a.ts', 'p/b.ts', 'p/c.ts']]);
    expect(cycles(g({ 'p/a.ts': ['p/a.ts'] }))).toEqual([['p/a.ts']]);
    expect(cycles(g({ 'p/a.ts': ['p/b.ts', 'q/c.ts'], 'p/b.ts': ['q/c.ts'], 'q/c.ts': [] }))).toEqual([]);
  });

  it('find a folder cycle made of files that do not form a file cycle', () => {
    const files = g({ 'x/a.ts': ['y/b.ts'], 'y/b.ts': [], 'y/c.ts': ['x/d.ts'], 'x/d.ts': [] });
    expect(cycles(files)).toEqual([]);
    const { folders, why } = folderGraph(files);
    const found = cycles(folders);
    expect(found).toEqual([['x', 'y']]);
    expect(explain(found[0], why)).toContain('y/c.ts -> x/d.ts');
  });
});

describe('the layout of plugin/ and overlay/', () => {
  const { graph, unresolved } = importGraph(['plugin', 'overlay']);

  it('is read completely (every relative import resolves; the graph is not empty)', () => {
    expect(unresolved).toEqual([]);
    expect(graph.size).toBeGreaterThan(50);
    // a dynamic import is an edge: runCni loads Kubernetes mode lazily
    expect(graph.get('plugin/dispatch/run.ts')).toContain('plugin/k8s/k8s-mode.ts');
  });

  it('has no import cycle between files', () => {
    const found = cycles(graph);
    expect(found.map((c) => c.join(' <-> '))).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    const { folders, why } = folderGraph(graph);
    expect(cycles(folders).map((c) => explain(c, why))).toEqual([]);
  });

  it('never imports plugin/ from overlay/', () => {
    const bad = [...graph].flatMap(([from, tos]) => (from.startsWith('overlay/') ? [...tos].filter((t) => t.startsWith('plugin/')).map((t) => `${from} -> ${t}`) : []));
    expect(bad).toEqual([]);
  });

  it('keeps the agent, including its Kubernetes side, under overlay/agent/', () => {
    const agentSide = ['overlay/agent/k8s/membership-source.ts', 'overlay/agent/k8s/node-side.ts', 'overlay/agent/k8s/node-files.ts'];
    for (const f of agentSide) expect(graph.has(f)).toBe(true);
    expect([...graph.keys()].filter((f) => /membership-source|node-side|node-files/.test(f) && !f.startsWith('overlay/agent/'))).toEqual([]);
  });
});
