/**
 * Shared by the reliability tests (cycles, kill-add): their plugin config, a seeded PRNG, the
 * agent's RSS, and what podlegs left on a lab node after its pods were deleted: every kind of
 * object an ADD creates, each reported as one line (so a failing test says what leaked).
 *
 *   links     pl* links in the node's netns (legs, bridges, VXLAN devices); any link but lo in a pod's
 *   fdb       FDB entries of the node's plvx* devices; on the other nodes, entries pointing at it
 *   state     files in the node's stateDir but node.lock (a killed writer's .tmp file included)
 *   registry  registry files naming the node's VTEP (a killed writer's .tmp file included)
 *   ipam      host-local allocation files (named by the address) under the node's ipam dir
 */
import * as fs from 'fs';
import * as path from 'path';
import { Lab, LabNode } from '../../lab/lab';
import { filesUnder, ipJson } from '../../lab/nf';

type Json = Record<string, unknown>;

/**
 * The podlegs entry of the reliability tests on node n: networks a and c static, b and d with
 * host-local IPAM; socket: where the plugin looks for the agent (default the node's agent).
 */
export function reliabilityConf(lab: Lab, n: LabNode, legs: Json[], o: { prevResult?: unknown; socket?: string } = {}): Json {
  return {
    cniVersion: '1.0.0', name: 'lab', type: 'podlegs',
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(n.dir, 'state'), log: { file: path.join(n.dir, 'podlegs.log'), level: 'info' },
    agent: { socket: o.socket ?? n.agentSocket },
    networks: {
      a: { vni: 100 },
      b: { vni: 200, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: path.join(n.dir, 'ipam') } },
      c: { vni: 300 },
      d: { vni: 400, ipam: { type: 'host-local', subnet: '10.40.0.0/24', dataDir: path.join(n.dir, 'ipam') } },
    },
    legs, ...(o.prevResult ? { prevResult: o.prevResult } : {}),
  };
}

interface FdbJson { mac: string; dst?: string; ifname?: string }

export async function nodeLeaks(lab: Lab, node: LabNode, podNetns: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const l of await ipJson<{ ifname: string }[]>(lab, node.nsName, 'link')) if (/^pl/.test(l.ifname)) out.push(`link ${l.ifname}`);
  for (const ns of podNetns) {
    for (const l of await ipJson<{ ifname: string }[]>(lab, ns, 'link')) if (l.ifname !== 'lo') out.push(`link ${l.ifname} in ${ns}`);
  }
  for (const n of lab.nodes) {
    for (const e of await fdb(lab, n)) {
      if (n === node || e.dst === node.vtep) out.push(`fdb on ${n.name}: ${e.mac} dev ${e.ifname} dst ${e.dst ?? '-'}`);
    }
  }
  for (const f of filesUnder(path.join(node.dir, 'state'))) if (path.basename(f) !== 'node.lock') out.push(`state file ${f}`);
  for (const f of filesUnder(lab.registryDir)) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { /* removed meanwhile */ }
    if (text.includes(`"${node.vtep}"`) || path.basename(f).startsWith('.')) out.push(`registry file ${f}`);
  }
  for (const f of filesUnder(path.join(node.dir, 'ipam'))) if (/\d+\.\d+\.\d+\.\d+$/.test(f)) out.push(`ipam allocation ${f}`);
  return out;
}

/** FDB entries of podlegs' VXLAN devices (plvx*) on a node, from the kernel. */
async function fdb(lab: Lab, n: LabNode): Promise<FdbJson[]> {
  const r = await lab.sh('bridge -j fdb show', { netns: n.nsName });
  return (JSON.parse(r.stdout.trim() || '[]') as FdbJson[]).filter((e) => /^plvx\d+$/.test(e.ifname ?? ''));
}

/** Resident set size of a process, in MiB (VmRSS). */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Math.round((Number(m[1]) / 1024) * 10) / 10;
}

/** Open file descriptors of a process (sockets, netlink, files). */
export const fdCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;

/** The agent's V8 heap in use, in MiB, from its /metrics (in its node's netns). */
export async function agentHeapMiB(lab: Lab, n: LabNode): Promise<number> {
  const r = await lab.sh('curl -s -m 30 http://127.0.0.1:9750/metrics', { netns: n.nsName });
  const m = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(r.stdout);
  if (!m) throw new Error('no nodejs_heap_size_used_bytes in the agent\'s /metrics');
  return Math.round((Number(m[1]) / 1048576) * 10) / 10;
}

/** A small seeded PRNG (mulberry32): the same seed replays the same trials. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: $PODLEGS_TEST_SEED to replay one, else a fresh one. */
export function testSeed(): number {
  const v = Number(process.env.PODLEGS_TEST_SEED);
  return Number.isInteger(v) && v > 0 ? v : 1 + Math.floor(Math.random() * 0x7fffffff);
}
