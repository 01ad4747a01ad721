#!/usr/bin/env node
// Agent benchmarks (prints figures, no verdict). Needs root; everything lives in lab network
// namespaces (pl<4 hex>-*) removed at the end, also on failure and on SIGINT/SIGTERM.
//
// (a) convergence: a 10-node lab, `podlegs agent` on every node. VNIs 101..110; node k hosts a
//     resident pod (a real CNI ADD, standalone) with legs in every VNI but 100+k, so each VNI has
//     9 member nodes. A join = a member of VNI 100+k on node k written to the file registry (what
//     ADD does); measured: from just before the registry write until `bridge monitor fdb` on each
//     of the 9 member nodes reports the flood entry towards node k. Then it leaves again (entry
//     withdrawn everywhere) and the next join follows, round robin over the nodes.
// (b) scale: synthetic membership (1000 remote nodes x 200 networks, 5 networks per node: 5000
//     flood + 5000 MAC entries) reconciled by the Agent into a node netns holding 200 empty-FDB
//     segments, in a process of its own (time, peak RSS), then a no-op resync and 1 % churn. The
//     same entries are programmed with `bridge -batch` and with one awaited netlink request per
//     entry in sibling namespaces, for the programming rate. Last, the real `podlegs agent`
//     binary with those members as a file registry (5200 files): start → converged, then churn.
// (c) resync and grace: a 2-node lab, agents with a short resync period and grace period. Drift:
//     n1's flood entry towards n2 deleted by hand, measured until the periodic resync puts it
//     back (no registry event). Grace: a pod with the only leg of VNI 300 on n1 loses its netns
//     without a DEL, measured until the agent removes the empty segment. (The lab tests only
//     assert that both happen, and the segment not before the grace period.)
//
// usage: node scripts/bench-agent.mjs [--joins N] [--skip-convergence] [--skip-scale] [--skip-resync]
//          [--remote-nodes N] [--networks N] [--per-node N] [--churn F] [--bin PATH] [--json FILE]
//          [--resync-seconds S] [--grace-seconds S] [--drift-rounds N] [--grace-rounds N]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadLib, ROOT, LIB } from './bench/agent-lib.mjs';
import { churn, synthMembers, writeBridgeBatch } from './bench/agent-synth.mjs';
import { quantile, table, fmt } from './bench/stats.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const o = {
  joins: Number(opt('--joins', 40)),
  remoteNodes: Number(opt('--remote-nodes', 1000)),
  networks: Number(opt('--networks', 200)),
  perNode: Number(opt('--per-node', 5)),
  churn: Number(opt('--churn', 0.01)),
  bin: opt('--bin'),
  json: opt('--json'),
  convergence: !args.includes('--skip-convergence'),
  scale: !args.includes('--skip-scale'),
  resync: !args.includes('--skip-resync'),
  resyncSeconds: Number(opt('--resync-seconds', 2)),
  graceSeconds: Number(opt('--grace-seconds', 2)),
  driftRounds: Number(opt('--drift-rounds', 10)),
  graceRounds: Number(opt('--grace-rounds', 4)),
};
if (process.getuid?.() !== 0) { console.error('the agent benchmark builds network namespaces: run it as root'); process.exit(1); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (s) => process.stderr.write(`[bench-agent] ${s}\n`);
const sh = (argv, input) => {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  return r.stdout;
};
const results = { machine: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version } };

const lib = await loadLib();
const tmp = mkdtempSync('/tmp/podlegs-bench-agent-');
let bin = o.bin;
if (!bin) {
  // A private build: a concurrent `npm run build` must not swap the binary under running agents.
  bin = join(tmp, 'podlegs');
  sh(['node', join(ROOT, 'scripts/build.mjs'), '--out', bin]);
}
const labs = new Set();
const children = new Set();
const cleanup = async () => {
  for (const c of children) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  for (const l of labs) await l.destroy().catch((e) => say(`cleanup: ${e.message}`));
  rmSync(tmp, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });

async function newLab(nodes) {
  const lab = await lib.Lab.create({ nodes, podlegsBin: bin });
  labs.add(lab);
  return lab;
}

function agentConfig(lab, node, extra) {
  return {
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir }, stateDir: join(node.dir, 'state'),
    log: { file: join(node.dir, 'agent.log'), level: 'info' }, ...extra, agent: { socket: node.agentSocket, ...extra?.agent },
  };
}

async function startAgent(lab, node, conf) {
  const file = join(node.dir, 'agent.json');
  writeFileSync(file, JSON.stringify(conf));
  const a = lab.spawn(node.netns, [bin, 'agent', '--config', file], { env: { NODE_NAME: node.name } });
  await a.waitFor('podlegs agent: running', 20_000);
  return a;
}

// ---------------------------------------------------------------- (a) convergence

async function convergence() {
  const N = 10;
  say(`convergence: ${N}-node lab, ${o.joins} joins`);
  const lab = await newLab(N);
  const vniOf = (k) => 100 + k;
  const networks = Object.fromEntries(lab.nodes.map((n) => [`v${vniOf(n.index)}`, { vni: vniOf(n.index) }]));
  for (const n of lab.nodes) {
    const pod = await lab.addPod(n, `r${n.index}`);
    const legs = lab.nodes.filter((m) => m !== n).map((m, i) => ({ network: `v${vniOf(m.index)}`, interface: `net${i + 1}` }));
    const conf = { cniVersion: '1.1.0', name: 'bench', type: 'podlegs', ...agentConfig(lab, n), log: { file: join(n.dir, 'podlegs.log'), level: 'info' }, networks, legs };
    const r = await lab.exec(n, 'podlegs', { command: 'ADD', conf, pod, ifname: 'eth0' });
    if (r.code !== 0) throw new Error(`resident pod ADD on ${n.name} failed: ${r.stdout}${r.stderr}`);
  }
  // debug: every run logs its duration, read back below to show where the time goes.
  for (const n of lab.nodes) await startAgent(lab, n, { ...agentConfig(lab, n, { agent: { resyncSeconds: 60 } }), log: { file: join(n.dir, 'agent.log'), level: 'debug' } });

  // `bridge monitor fdb` per node: the moment each node's kernel got (or lost) an entry.
  const seen = new Map(); // "<node> <add|del> <vni> <dst>" → ms
  let wake = () => undefined;
  for (const n of lab.nodes) {
    const c = spawn('ip', ['netns', 'exec', n.nsName, 'bridge', 'monitor', 'fdb'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(c);
    let buf = '';
    c.stdout.setEncoding('utf8').on('data', (d) => {
      const t = performance.now();
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        const m = /^(Deleted )?00:00:00:00:00:00 dev plvx(\d+) dst (\S+)/.exec(line);
        if (m) seen.set(`${n.index} ${m[1] ? 'del' : 'add'} ${m[2]} ${m[3]}`, t);
      }
      wake();
    });
  }
  await sleep(500);
  const registry = new lib.FileRegistry(lab.registryDir);
  const waitAll = async (keys, timeoutMs = 10_000) => {
    const deadline = performance.now() + timeoutMs;
    while (!keys.every((k) => seen.has(k))) {
      if (performance.now() > deadline) throw new Error(`not converged: missing ${keys.filter((k) => !seen.has(k)).join(', ')}`);
      await new Promise((r) => { wake = r; setTimeout(r, 50); });
    }
    return keys.map((k) => seen.get(k));
  };
  const all = [];
  const perNode = [];
  const leaves = [];
  const warmup = 3;
  for (let j = 0; j < o.joins + warmup; j++) {
    const k = (j % N) + 1;
    const joiner = lab.nodes[k - 1];
    const vni = vniOf(k);
    const others = lab.nodes.filter((n) => n !== joiner);
    const member = { vni, vtep: joiner.vtep, mac: `02:be:00:00:${(j >> 8).toString(16).padStart(2, '0')}:${(j & 255).toString(16).padStart(2, '0')}`, owner: `bench${j}/eth0/net1` };
    for (const n of others) { seen.delete(`${n.index} add ${vni} ${joiner.vtep}`); seen.delete(`${n.index} del ${vni} ${joiner.vtep}`); }
    const t0 = performance.now();
    registry.register(member);
    const ts = await waitAll(others.map((n) => `${n.index} add ${vni} ${joiner.vtep}`));
    const t1 = performance.now();
    registry.unregister(member);
    const td = await waitAll(others.map((n) => `${n.index} del ${vni} ${joiner.vtep}`));
    if (j >= warmup) {
      all.push(Math.max(...ts) - t0);
      perNode.push(...ts.map((t) => t - t0));
      leaves.push(Math.max(...td) - t1);
    }
    await sleep(20);
  }
  for (const c of children) { try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ } children.delete(c); }
  const q = (v) => ({ n: v.length, p50: quantile(v, 0.5), p90: quantile(v, 0.9), p99: quantile(v, 0.99), max: Math.max(...v) });
  const runs = lab.nodes.flatMap((n) => readFileSync(join(n.dir, 'agent.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((l) => l.message === 'reconciled' && l.trigger === 'event'));
  results.convergence = { nodes: N, memberNodesPerJoin: N - 1, joins: o.joins, allNodes: q(all), perNode: q(perNode), leaveAllNodes: q(leaves),
    eventReconciles: { ...q(runs.map((l) => l.durationMs)), perJoinOrLeave: runs.length / (2 * (o.joins + warmup)) }, loadavg: loadavg() };
  await lab.destroy();
  labs.delete(lab);
}

// ---------------------------------------------------------------- (b) scale

function segmentBatch(vnis, vtep) {
  const lines = [];
  for (const v of vnis) {
    const leg = `pl${v.toString(16).padStart(12, '0')}`;
    lines.push(`link add plbr${v} type bridge`, `link add plvx${v} type vxlan id ${v} dstport 4789 nolearning local ${vtep} dev ul0`,
      `link set plvx${v} master plbr${v}`, `link add ${leg} type veth peer name bk${v.toString(16).padStart(12, '0')}`,
      `link set ${leg} master plbr${v}`, `link set plvx${v} up`, `link set plbr${v} up`, `link set ${leg} up`);
  }
  return `${lines.join('\n')}\n`;
}

const fdbCount = (ns) => sh(['ip', 'netns', 'exec', ns, 'bridge', 'fdb', 'show']).split('\n').filter((l) => / dev plvx\d+ dst /.test(l)).length;

function worker(cfg) {
  const r = spawnSync('node', [join(ROOT, 'scripts/bench/agent-scale-worker.mjs'), JSON.stringify({ lib: LIB, ...cfg })], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`scale worker (${cfg.mode}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function scale() {
  const vnis = Array.from({ length: o.networks }, (_, i) => 1000 + i);
  say(`scale: ${o.remoteNodes} remote nodes x ${o.networks} networks, ${o.perNode} networks per node, ${o.churn * 100} % churn`);
  const lab = await newLab(4);
  const [nAgent, nBatch, nSerial, nBinary] = lab.nodes;
  for (const n of lab.nodes) sh(['ip', '-n', n.nsName, '-batch', '-'], segmentBatch(vnis, n.vtep));
  const synth = { vnis, remoteNodes: o.remoteNodes, perNode: o.perNode, churn: o.churn };

  // Agent, in a process of its own.
  const agent = worker({ ...synth, mode: 'agent', ns: nAgent.netns, localVtep: nAgent.vtep });
  agent.kernelEntriesAfterChurn = fdbCount(nAgent.nsName);

  // bridge -batch, same entries.
  const want = lib.desiredState(synthMembers({ ...synth, localVtep: nBatch.vtep }), nBatch.vtep, vnis).segments;
  const batchFile = join(tmp, 'fdb.batch');
  const batchLines = writeBridgeBatch(want, batchFile);
  const t0 = performance.now();
  sh(['ip', 'netns', 'exec', nBatch.nsName, 'bridge', '-batch', batchFile]);
  const batchMs = performance.now() - t0;
  const batch = { entries: batchLines, ms: batchMs, kernelEntries: fdbCount(nBatch.nsName) };

  // One awaited request per entry.
  const serial = worker({ ...synth, mode: 'serial', ns: nSerial.netns, localVtep: nSerial.vtep }).serial;

  // The agent binary with a file registry of the same members.
  const regDir = join(lab.dir, 'scale-registry');
  const registry = new lib.FileRegistry(regDir);
  const members = synthMembers({ ...synth, localVtep: nBinary.vtep });
  let t = performance.now();
  for (const m of members) registry.register(m);
  const writeMs = performance.now() - t;
  const conf = { ...agentConfig(lab, nBinary), registry: { type: 'file', path: regDir }, log: { file: join(nBinary.dir, 'agent.log'), level: 'debug' },
    agent: { socket: nBinary.agentSocket, resyncSeconds: 3600, gracePeriodSeconds: 3600 } };
  const logLines = () => readFileSync(conf.log.file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  t = performance.now();
  const proc = await startAgent(lab, nBinary, conf);
  const waitReconciled = async (pred, timeoutMs = 60_000) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = logLines().filter((l) => l.message === 'reconciled').find(pred);
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error('agent binary did not reconcile in time');
      await sleep(10);
    }
  };
  const first = await waitReconciled((l) => l.trigger === 'start');
  const startToConverged = performance.now() - t;
  const entriesAfterStart = fdbCount(nBinary.nsName);
  const c = churn(members, { fraction: o.churn, vnis, remoteNodes: o.remoteNodes, localVtep: nBinary.vtep });
  const before = logLines().length;
  t = performance.now();
  for (const m of c.left) registry.unregister(m);
  for (const m of c.joined) registry.register(m);
  // Changes the churn asks for: the plan from the old desired state to the new one.
  const asActual = (d) => new Map([...d].map(([vni, x], i) => [vni, { vni, vxlanIndex: i + 1, legs: ['x'], flood: new Set(x.flood),
    macs: new Map([...x.macs].map(([mac, dst]) => [mac, new Set([dst])])) }]));
  const expected = lib.planFdb(asActual(lib.desiredState(members, nBinary.vtep, vnis).segments),
    lib.desiredState(c.members, nBinary.vtep, vnis).segments).length;
  let done = 0;
  const churnRuns = [];
  const deadline = performance.now() + 30_000;
  while (done < expected && performance.now() < deadline) {
    const runs = logLines().slice(before).filter((l) => l.message === 'reconciled');
    done = runs.reduce((n, l) => n + l.changes, 0);
    churnRuns.splice(0, churnRuns.length, ...runs);
    if (done < expected) await sleep(5);
  }
  const churnWall = performance.now() - t;
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
  await proc.kill();
  const binary = {
    registryFiles: members.length, registryWriteMs: writeMs, startToConvergedMs: startToConverged, firstReconcileMs: first.durationMs,
    firstReconcileChanges: first.changes, kernelEntries: entriesAfterStart, churnChanges: done, churnExpected: expected,
    churnRuns: churnRuns.length, churnReconcileMs: churnRuns.reduce((n, l) => n + l.durationMs, 0), churnWallMs: churnWall, peakRssMb: hwm,
  };
  results.scale = { remoteNodes: o.remoteNodes, networks: o.networks, perNode: o.perNode, churn: o.churn, agent, batch, serial, binary };
  await lab.destroy();
  labs.delete(lab);
}

// ---------------------------------------------------------------- (c) resync and grace

async function resyncAndGrace() {
  const R = o.resyncSeconds;
  const G = o.graceSeconds;
  say(`resync: 2-node lab, resync every ${R} s, grace ${G} s; ${o.driftRounds} drift repairs, ${o.graceRounds} segment removals`);
  const lab = await newLab(2);
  const [n1, n2] = lab.nodes;
  const networks = { a: { vni: 100 }, g: { vni: 300 } };
  const addPod = async (n, name, network) => {
    const pod = await lab.addPod(n, name);
    const conf = { cniVersion: '1.1.0', name: 'bench', type: 'podlegs', ...agentConfig(lab, n), log: { file: join(n.dir, 'podlegs.log'), level: 'info' },
      networks, legs: [{ network, interface: 'net1' }] };
    const r = await lab.exec(n, 'podlegs', { command: 'ADD', conf, pod, ifname: 'eth0' });
    if (r.code !== 0) throw new Error(`ADD ${name} on ${n.name} failed: ${r.stdout}${r.stderr}`);
    return { pod, conf };
  };
  for (const n of lab.nodes) await addPod(n, `r${n.index}`, 'a');
  for (const n of lab.nodes) await startAgent(lab, n, agentConfig(lab, n, { agent: { resyncSeconds: R, gracePeriodSeconds: G } }));
  const inNs = (argv) => spawnSync('ip', ['netns', 'exec', n1.nsName, ...argv], { encoding: 'utf8' });
  const flooding = () => inNs(['bridge', 'fdb', 'show', 'dev', 'plvx100']).stdout.includes(`00:00:00:00:00:00 dst ${n2.vtep} `);
  const hasSegment = () => inNs(['ip', 'link', 'show', 'plbr300']).status === 0;
  const until = async (what, cond, timeoutMs) => {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`resync bench: ${what} not seen within ${timeoutMs} ms`);
      await sleep(10);
    }
    return performance.now();
  };
  await until('flood entry n1 -> n2', flooding, 60_000);
  const drift = [];
  for (let i = 0; i < o.driftRounds; i++) {
    const t0 = performance.now();
    sh(['ip', 'netns', 'exec', n1.nsName, 'bridge', 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'plvx100', 'dst', n2.vtep]);
    drift.push(await until('drift repair', flooding, 10 * R * 1000 + 60_000) - t0);
    await sleep(Math.random() * R * 1000); // the next edit at another phase of the resync period
  }
  const grace = [];
  for (let i = 0; i < o.graceRounds; i++) {
    const g = await addPod(n1, `g${i}`, 'g');
    const t0 = performance.now();
    await lab.removePod(g.pod); // netns and leg gone, no DEL yet
    grace.push(await until('segment removal', () => !hasSegment(), 10 * (R + G) * 1000 + 60_000) - t0);
    const d = await lab.exec(n1, 'podlegs', { command: 'DEL', conf: g.conf, pod: g.pod, ifname: 'eth0' });
    if (d.code !== 0) throw new Error(`DEL g${i} failed: ${d.stdout}${d.stderr}`);
  }
  const q = (v) => ({ n: v.length, p50: quantile(v, 0.5), p90: quantile(v, 0.9), max: Math.max(...v), min: Math.min(...v) });
  results.resync = { resyncSeconds: R, graceSeconds: G, driftRepair: q(drift), segmentRemoval: q(grace), loadavg: loadavg() };
  await lab.destroy();
  labs.delete(lab);
}

// ---------------------------------------------------------------- report

function report() {
  const out = [];
  out.push(`machine: ${results.machine.cpus} x ${results.machine.cpu}, kernel ${results.machine.kernel}, node ${results.machine.node}`);
  const c = results.convergence;
  if (c) {
    out.push('', `(a) convergence: ${c.nodes}-node lab, ${c.joins} joins (registry write -> flood entry in the kernel), ${c.memberNodesPerJoin} member nodes each`);
    out.push(table(['measure', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'], [
      ['join, all member nodes', c.allNodes.n, fmt(c.allNodes.p50), fmt(c.allNodes.p90), fmt(c.allNodes.p99), fmt(c.allNodes.max)],
      ['join, each node', c.perNode.n, fmt(c.perNode.p50), fmt(c.perNode.p90), fmt(c.perNode.p99), fmt(c.perNode.max)],
      ['leave, all member nodes', c.leaveAllNodes.n, fmt(c.leaveAllNodes.p50), fmt(c.leaveAllNodes.p90), fmt(c.leaveAllNodes.p99), fmt(c.leaveAllNodes.max)],
      ['one agent reconcile (event)', c.eventReconciles.n, fmt(c.eventReconciles.p50), fmt(c.eventReconciles.p90), fmt(c.eventReconciles.p99), fmt(c.eventReconciles.max)],
    ]));
    out.push(`reconciles per agent and change: ${fmt(c.eventReconciles.perJoinOrLeave / c.nodes, 2)} (all 10 agents run on every change); load average at the end ${c.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  }
  const s = results.scale;
  if (s) {
    const a = s.agent;
    out.push('', `(b) scale: ${s.remoteNodes} remote nodes x ${s.networks} networks (${s.perNode} per node; ${a.members} members), into one node with ${s.networks} segments`);
    out.push(table(['run', 'changes', 'total ms', 'link dump ms', 'fdb dump ms', 'fdb apply ms', 'peak RSS MB'], [
      ['from empty', a.fromEmpty.changes, fmt(a.fromEmpty.ms), fmt(a.fromEmpty.linksMs), fmt(a.fromEmpty.fdbAllMs), fmt(a.fromEmpty.fdbBatchMs), fmt(a.fromEmpty.maxRssMb)],
      ['resync, nothing to do', a.noop.changes, fmt(a.noop.ms), fmt(a.noop.linksMs), fmt(a.noop.fdbAllMs), fmt(a.noop.fdbBatchMs), fmt(a.noop.maxRssMb)],
      [`churn ${s.churn * 100} % (${a.churn.left} leave, ${a.churn.joined} join)`, a.churn.changes, fmt(a.churn.ms), fmt(a.churn.linksMs), fmt(a.churn.fdbAllMs), fmt(a.churn.fdbBatchMs), fmt(a.churn.maxRssMb)],
    ]));
    out.push(`kernel entries after the first run: ${a.kernelEntries}; after churn: ${a.kernelEntriesAfterChurn}; worker baseline RSS ${a.baselineRssMb} MB, peak ${a.peakRssMb} MB`);
    const rate = (n, ms) => `${Math.round(n / ms * 1000).toLocaleString('en')}/s`;
    out.push('', 'FDB programming rate, same entries, empty segments:');
    out.push(table(['method', 'entries', 'ms', 'rate'], [
      ['agent: fdbBatch (128 per datagram)', a.fromEmpty.changes, fmt(a.fromEmpty.fdbBatchMs), rate(a.fromEmpty.changes, a.fromEmpty.fdbBatchMs)],
      ['bridge -batch (process incl.)', s.batch.entries, fmt(s.batch.ms), rate(s.batch.entries, s.batch.ms)],
      ['one awaited request per entry', s.serial.entries, fmt(s.serial.ms), rate(s.serial.entries, s.serial.ms)],
    ]));
    const b = s.binary;
    out.push('', `podlegs agent binary, file registry of ${b.registryFiles} entries (written in ${fmt(b.registryWriteMs, 0)} ms):`);
    out.push(`  spawn -> first reconcile done: ${fmt(b.startToConvergedMs)} ms (the reconcile itself ${fmt(b.firstReconcileMs)} ms, ${b.firstReconcileChanges} changes; ${b.kernelEntries} entries in the kernel)`);
    out.push(`  churn via the registry: ${b.churnChanges}/${b.churnExpected} changes in ${b.churnRuns} run(s), ${fmt(b.churnReconcileMs)} ms reconciling, ${fmt(b.churnWallMs)} ms from first write to done`);
    out.push(`  agent peak RSS (VmHWM): ${fmt(b.peakRssMb)} MB`);
  }
  const r = results.resync;
  if (r) {
    out.push('', `(c) resync every ${r.resyncSeconds} s, grace period ${r.graceSeconds} s (2-node lab)`);
    out.push(table(['measure', 'n', 'min ms', 'p50 ms', 'p90 ms', 'max ms'], [
      ['drift repair (flood entry deleted by hand -> back)', r.driftRepair.n, fmt(r.driftRepair.min), fmt(r.driftRepair.p50), fmt(r.driftRepair.p90), fmt(r.driftRepair.max)],
      ['segment without legs (netns gone) -> removed', r.segmentRemoval.n, fmt(r.segmentRemoval.min), fmt(r.segmentRemoval.p50), fmt(r.segmentRemoval.p90), fmt(r.segmentRemoval.max)],
    ]));
    out.push(`drift repair is bounded by the resync period; removal should come no earlier than the grace period; load average at the end ${r.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  if (o.convergence) await convergence();
  if (o.scale) await scale();
  if (o.resync) await resyncAndGrace();
  report();
  if (o.json) writeFileSync(o.json, JSON.stringify(results, null, 2));
} catch (e) {
  say(`failed: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
