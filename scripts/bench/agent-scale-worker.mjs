// One measured process of the agent's scale benchmark (a process of its own, so
// its peak RSS is the reconcile's, not the benchmark driver's). Argument: JSON
//   { lib, ns, localVtep, vnis, remoteNodes, perNode, churn, mode: 'agent' | 'serial' }
// 'agent':  the real Agent reconciles the synthetic membership into the empty
//           segments of netns `ns`, then once more with nothing to do, then after churn.
// 'serial': the same entries, one netlink request awaited at a time (Kernel.fdbAdd),
//           the way the plugin programs its few entries: the baseline batching beats.
// Prints one JSON object on stdout.
import { createRequire } from 'node:module';
import { churn, synthMembers } from './agent-synth.mjs';

const cfg = JSON.parse(process.argv[2]);
const lib = createRequire(import.meta.url)(cfg.lib);
const mb = (bytes) => Math.round(bytes / 1048576 * 10) / 10;
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024 * 10) / 10; // maxRSS is in KiB
const now = () => Number(process.hrtime.bigint()) / 1e6;

const k = lib.Kernel.open(cfg.ns);
const members = synthMembers(cfg);
const out = { members: members.length, baselineRssMb: mb(process.memoryUsage().rss) };

if (cfg.mode === 'serial') {
  const segs = await lib.readSegments(k);
  const want = lib.desiredState(members, cfg.localVtep, segs.keys()).segments;
  const changes = lib.planFdb(segs, want);
  const t0 = now();
  for (const c of changes) await k.fdbAdd(c.vxlanIndex, { mac: c.mac, dst: c.dst });
  out.serial = { entries: changes.length, ms: now() - t0 };
} else {
  // The agent's kernel, with each kind of call timed.
  const spent = { links: 0, fdbAll: 0, fdbBatch: 0 };
  const timed = (name) => async (...args) => {
    const t = now();
    try { return await k[name](...args); } finally { spent[name] += now() - t; }
  };
  const kernel = { links: timed('links'), fdbAll: timed('fdbAll'), fdbBatch: timed('fdbBatch'), deleteLink: (i) => k.deleteLink(i) };
  const source = { members, list: async () => ({ members: source.members, problems: [] }), watch: () => () => undefined };
  const warnings = [];
  const log = { info: () => undefined, warn: (m, meta) => warnings.push(`${m} ${JSON.stringify(meta)}`) };
  const agent = new lib.Agent(kernel, source, { localVtep: cfg.localVtep, resyncMs: 1e9, debounceMs: 0, graceMs: 1e9, log });
  const run = async (trigger) => {
    for (const key of Object.keys(spent)) spent[key] = 0;
    const t0 = now();
    await agent.reconcile(trigger);
    const ms = now() - t0;
    return { ms, changes: agent.last.changes, failures: agent.last.failures, ok: agent.last.ok, ...Object.fromEntries(Object.entries(spent).map(([n, v]) => [`${n}Ms`, v])), maxRssMb: maxRssMb() };
  };
  out.fromEmpty = await run('start');
  const segs = await lib.readSegments(k);
  out.kernelEntries = [...segs.values()].reduce((n, s) => n + s.flood.size + [...s.macs.values()].reduce((a, d) => a + d.size, 0), 0);
  out.noop = await run('resync');
  const c = churn(members, { fraction: cfg.churn, vnis: cfg.vnis, remoteNodes: cfg.remoteNodes, localVtep: cfg.localVtep });
  source.members = c.members;
  out.churn = { left: c.left.length, joined: c.joined.length, ...(await run('event')) };
  out.warnings = warnings.slice(0, 5);
}
out.peakRssMb = maxRssMb();
k.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
