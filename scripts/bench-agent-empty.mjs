#!/usr/bin/env node
// npm run bench — the agent from empty at scale, beside `bridge -batch` of the same entries.
//
// One node that sees N other nodes (default 1000), each with a member in every one of V VNIs
// (default 20): N x V flood entries plus as many remote-member MAC entries, in a file registry
// of N x V files (+ V local members). Measured, interleaved over --rounds rounds (the starting
// method alternates), each round from empty segments (re-created, so the FDB is empty):
//   agent:  spawn of `podlegs agent` (the real binary) until its first reconcile is done
//           (its "reconciled" log line, trigger start), peak RSS (VmHWM) at that moment, and
//           where the time went from its log: process start until the reconcile began, then
//           registry read, kernel dumps, diff, netlink apply;
//   --compare PATH: a second podlegs build's agent, measured the same way in the same rounds;
//   batch:  `bridge -batch` of the same entries (fdb append / fdb replace ... self permanent),
//           process spawn to exit, into the same empty segments of a sibling node netns.
// Prints figures and the ratio, no verdict. Everything lives in lab network namespaces
// (pl<4 hex>-*) removed at the end, also on failure and on SIGINT/SIGTERM. Needs root.
//
// usage: node scripts/bench-agent-empty.mjs [--remote-nodes N] [--vnis V] [--rounds R] [--bin PATH] [--compare PATH] [--json FILE] [--registry DIR] [--cpu-prof DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadLib, ROOT } from './bench/agent-lib.mjs';
import { synthMembers, writeBridgeBatch } from './bench/agent-synth.mjs';
import { fmt, median, table } from './bench/stats.mjs';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: node scripts/bench-agent-empty.mjs [--remote-nodes N] [--vnis V] [--rounds R] [--bin PATH] [--compare PATH] [--json FILE] [--registry DIR] [--cpu-prof DIR]   (as root)');
  process.exit(0);
}
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const o = {
  remoteNodes: Number(opt('--remote-nodes', 1000)), vnis: Number(opt('--vnis', 20)), rounds: Number(opt('--rounds', 5)),
  bin: opt('--bin'), compare: opt('--compare'), json: opt('--json'), registry: opt('--registry'), prof: opt('--cpu-prof'),
};
if (process.getuid?.() !== 0) { console.error('bench-agent-empty builds network namespaces: run it as root'); process.exit(1); }

const say = (s) => process.stderr.write(`[bench-agent-empty] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (argv, input) => {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim().slice(0, 500)}`);
  return r.stdout;
};

const lib = await loadLib();
const tmp = mkdtempSync('/tmp/podlegs-bench-empty-');
let lab;
const cleanup = async () => {
  await lab?.destroy().catch((e) => say(`cleanup: ${e.message}`));
  rmSync(tmp, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });

// Segments plbr<vni> + plvx<vni> with one local leg each (so no segment is "empty"), as ADD makes them.
const vnis = Array.from({ length: o.vnis }, (_, i) => 1000 + i);
const segmentsUp = (vtep) => `${vnis.flatMap((v) => {
  const leg = `pl${v.toString(16).padStart(12, '0')}`;
  return [`link add plbr${v} type bridge`, `link add plvx${v} type vxlan id ${v} dstport 4789 nolearning local ${vtep} dev ul0`,
    `link set plvx${v} master plbr${v}`, `link add ${leg} type veth peer name bk${v.toString(16).padStart(12, '0')}`,
    `link set ${leg} master plbr${v}`, `link set plvx${v} up`, `link set plbr${v} up`, `link set ${leg} up`];
}).join('\n')}\n`;
const segmentsDown = () => `${vnis.flatMap((v) => [`link del plvx${v}`, `link del pl${v.toString(16).padStart(12, '0')}`, `link del plbr${v}`]).join('\n')}\n`;
const fdbCount = (ns) => sh(['ip', 'netns', 'exec', ns, 'bridge', 'fdb', 'show']).split('\n').filter((l) => / dev plvx\d+ dst /.test(l)).length;

async function main() {
  let bin = o.bin;
  if (!bin) {
    bin = join(tmp, 'podlegs'); // a private build: a concurrent `npm run build` must not swap it mid-run
    say('building a private podlegs');
    sh(['node', join(ROOT, 'scripts/build.mjs'), '--out', bin]);
  }
  lab = await lib.Lab.create({ nodes: 2, podlegsBin: bin });
  const [nAgent, nBatch] = lab.nodes;
  const members = synthMembers({ remoteNodes: o.remoteNodes, vnis, perNode: o.vnis, localVtep: nAgent.vtep });
  // --registry DIR: keep the registry there and reuse it in later runs (writing 20,000 fsynced
  // files takes a minute); lab node 1's VTEP is always the same, so its content is too.
  const regDir = o.registry ?? join(lab.dir, 'scale-registry');
  const registry = new lib.FileRegistry(regDir);
  let t = performance.now();
  const have = (await registry.list()).members.length;
  if (have !== members.length) for (const m of members) registry.register(m);
  const writeMs = performance.now() - t;
  say(`registry: ${members.length} files ${have === members.length ? 'reused' : 'written'} in ${fmt(writeMs, 0)} ms`);

  // The same entries for bridge -batch, from the agent's own desired-state rule.
  const want = lib.desiredState(synthMembers({ remoteNodes: o.remoteNodes, vnis, perNode: o.vnis, localVtep: nBatch.vtep }), nBatch.vtep, vnis).segments;
  const batchFile = join(tmp, 'fdb.batch');
  const batchLines = writeBridgeBatch(want, batchFile);
  const flood = [...want.values()].reduce((n, s) => n + s.flood.size, 0);

  const conf = {
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: regDir }, stateDir: join(nAgent.dir, 'state'),
    log: { file: join(nAgent.dir, 'agent.log'), level: 'debug' },
    agent: { socket: nAgent.agentSocket, resyncSeconds: 3600, gracePeriodSeconds: 3600 },
  };
  const confFile = join(nAgent.dir, 'agent.json');
  writeFileSync(confFile, JSON.stringify(conf));

  const runAgent = async (agentBin = bin) => {
    sh(['ip', '-n', nAgent.nsName, '-batch', '-'], segmentsUp(nAgent.vtep));
    rmSync(conf.log.file, { force: true });
    const wall0 = Date.now();
    const t0 = performance.now();
    const argv = o.prof ? ['node', '--cpu-prof', '--cpu-prof-dir', o.prof, agentBin] : [agentBin];
    const proc = lab.spawn(nAgent.netns, [...argv, 'agent', '--config', confFile], { env: { NODE_NAME: nAgent.name } });
    let first;
    const deadline = t0 + 120_000;
    while (!first) {
      if (performance.now() > deadline) throw new Error('the agent did not converge within 120 s');
      if (!proc.running?.() && proc.running !== undefined) throw new Error(`the agent exited: ${readLog().slice(-3).map((l) => JSON.stringify(l)).join('\n')}`);
      first = readLog().find((l) => l.message === 'reconciled' && l.trigger === 'start');
      if (!first) await sleep(2);
    }
    const ms = performance.now() - t0;
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
    await proc.kill();
    const entries = fdbCount(nAgent.nsName);
    sh(['ip', '-n', nAgent.nsName, '-batch', '-'], segmentsDown());
    const doneAt = Date.parse(first.timestamp);
    const phases = first.phases ?? {};
    return { ms, peakRssMb: hwm, entries, changes: first.changes, ok: first.ok, reconcileMs: first.durationMs,
      startupMs: doneAt - first.durationMs - wall0, ...phases };
  };
  const readLog = () => {
    if (!existsSync(conf.log.file)) return [];
    return readFileSync(conf.log.file, 'utf8').split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } });
  };
  const runBatch = () => {
    sh(['ip', '-n', nBatch.nsName, '-batch', '-'], segmentsUp(nBatch.vtep));
    const t0 = performance.now();
    sh(['ip', 'netns', 'exec', nBatch.nsName, 'bridge', '-batch', batchFile]);
    const ms = performance.now() - t0;
    const entries = fdbCount(nBatch.nsName);
    sh(['ip', '-n', nBatch.nsName, '-batch', '-'], segmentsDown());
    return { ms, entries };
  };

  const agent = [];
  const batch = [];
  const compare = [];
  const runCompare = () => runAgent(o.compare);
  const methods = [runAgent, runBatch, ...(o.compare ? [runCompare] : [])];
  for (let i = 0; i <= o.rounds; i++) {
    const order = [...methods.slice(i % methods.length), ...methods.slice(0, i % methods.length)];
    for (const f of order) {
      const r = await f();
      if (i === 0) continue; // warm-up
      (f === runAgent ? agent : f === runBatch ? batch : compare).push(r);
    }
    say(`${i === 0 ? 'warm-up' : `round ${i}/${o.rounds}`}: agent ${fmt(agent.at(-1)?.ms ?? NaN)} ms, bridge -batch ${fmt(batch.at(-1)?.ms ?? NaN)} ms${o.compare ? `, compared agent ${fmt(compare.at(-1)?.ms ?? NaN)} ms` : ''}`);
  }
  for (const r of [...agent, ...compare]) if (!r.ok || r.entries !== batchLines) throw new Error(`agent run ended with ${r.entries}/${batchLines} entries (ok ${r.ok})`);
  for (const r of batch) if (r.entries !== batchLines) throw new Error(`bridge -batch ended with ${r.entries}/${batchLines} entries`);
  return { registryFiles: members.length, registryWriteMs: writeMs, entries: batchLines, flood, agent, batch, compare };
}

function report(r) {
  const m = (k, rows = r.agent) => median(rows.map((x) => x[k]).filter((x) => Number.isFinite(x)));
  const out = [];
  out.push(`machine: ${cpus().length} x ${cpus()[0]?.model}, kernel ${release()}, node ${process.version}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  out.push('', `(d) agent from empty: ${o.remoteNodes} other nodes x ${o.vnis} VNIs, file registry of ${r.registryFiles} files; ${r.entries} FDB entries (${r.flood} flood + ${r.entries - r.flood} MAC); medians of ${r.agent.length} interleaved rounds`);
  out.push(table(['method', 'median ms', 'min ms', 'max ms', 'peak RSS MB'], [
    ['podlegs agent: spawn -> converged', fmt(m('ms')), fmt(Math.min(...r.agent.map((x) => x.ms))), fmt(Math.max(...r.agent.map((x) => x.ms))), fmt(m('peakRssMb'))],
    ['bridge -batch, same entries (process incl.)', fmt(m('ms', r.batch)), fmt(Math.min(...r.batch.map((x) => x.ms))), fmt(Math.max(...r.batch.map((x) => x.ms))), '-'],
  ]));
  out.push(`RATIO agent from empty / bridge -batch = ${fmt(m('ms'))} / ${fmt(m('ms', r.batch))} = ${(m('ms') / m('ms', r.batch)).toFixed(2)}   (target <= 1.5)`);
  if (r.compare.length) {
    out.push(`compared build ${o.compare}: spawn -> converged ${fmt(m('ms', r.compare))} ms (min ${fmt(Math.min(...r.compare.map((x) => x.ms)))}), peak RSS ${fmt(m('peakRssMb', r.compare))} MB; ratio to bridge -batch ${(m('ms', r.compare) / m('ms', r.batch)).toFixed(2)}`);
  }
  out.push('', 'where the agent\'s time goes (medians, ms; from its log):');
  out.push(table(['phase', 'ms'], [
    ['process start, bundle, config, underlay, watch (spawn -> reconcile begins)', fmt(m('startupMs'))],
    ['registry read (every file: readdir, read, parse, validate)', fmt(m('listMs'))],
    ['kernel dumps (links, FDB)', fmt(m('dumpMs'))],
    ['diff (desired state + plan)', fmt(m('planMs'))],
    ['netlink apply (batched FDB writes)', fmt(m('applyMs'))],
    ['= reconcile', fmt(m('reconcileMs'))],
  ]));
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  const r = await main();
  report(r);
  if (o.json) writeFileSync(o.json, JSON.stringify(r, null, 2));
} catch (e) {
  say(`failed: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
