// Hot-plug figures (printed, never asserted): time from the annotation change (one PATCH of
// the pod, as `kubectl annotate` makes) to the new leg answering a ping across nodes, and from
// the element's removal to the other node's flood entry for this one being gone; p50/p99 over
// BENCH_HOTPLUG_ITER (≥ 20) plugs, against the 1 s target. In between: network-status written
// (this node's agent) and both nodes' flood entries in place (both agents); the ping adds the
// pod's own ARP (a request sent before the flood entries exist is retransmitted after 1 s). Two lab nodes, the fake API, one
// agent per node; the leg's address comes from host-local IPAM (the comma form has no ips).
// Bundled and run by scripts/bench-hotplug.mjs, as root.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../../test/k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { Lab, LabNode, LabPod } from '../../test/lab/lab';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ITER = Math.max(20, Number(process.env.BENCH_HOTPLUG_ITER ?? 20));
const TARGET_MS = 1000;
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); const pos = (s.length - 1) * q; const lo = Math.floor(pos); return s[lo] + (s[Math.ceil(pos)] - s[lo]) * (pos - lo); };
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const t0 = now();
  while (!(await fn())) {
    if (now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r)); // the fake API runs in this process: let it answer
  }
  return now();
}

async function main(): Promise<void> {
  const lab = await Lab.create({ nodes: 2, podlegsBin: process.env.PODLEGS_BIN });
  const api = new FakeApiServer();
  const agents: ReturnType<Lab['spawn']>[] = [];
  try {
    await lab.sh('ip addr add 192.0.2.1/24 dev ulbr', { netns: lab.underlay });
    const port = await api.start((s) => inNetns(`/var/run/netns/${lab.underlay}`, () => s.listen(6443)));
    const kubeconfig = path.join(lab.dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, kubeconfigFor(`http://192.0.2.1:${port}`, api.token));
    const hostLocal = path.join(lab.dir, 'host-local');
    const nad = (name: string, cfg: Json): void => { api.put('network-attachment-definitions', { metadata: { name, namespace: 'nf' }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', name, type: 'podlegs', ...cfg }) } }); };
    nad('nf-a', { vni: 100 });
    nad('nf-b', { vni: 200, ipam: { type: 'host-local', ranges: [[{ subnet: '10.200.0.0/24', rangeStart: '10.200.0.10', rangeEnd: '10.200.0.20' }]], dataDir: hostLocal } });
    const entry = (n: LabNode): Json => ({ type: 'podlegs', underlay: { interface: 'ul0' }, kubernetes: { kubeconfig }, stateDir: path.join(n.dir, 'state'), log: { file: path.join(n.dir, 'podlegs.log'), level: 'info' }, agent: { socket: n.agentSocket } });
    for (const n of lab.nodes) {
      api.put('nodes', { metadata: { name: n.name }, status: { addresses: [{ type: 'InternalIP', address: n.vtep }] } });
      const file = path.join(n.dir, 'agent.json');
      fs.writeFileSync(file, JSON.stringify({ ...entry(n), type: undefined, log: { level: 'warn' }, registry: { type: 'kubernetes' } }));
      const a = lab.spawn(n.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: n.name } });
      agents.push(a);
      await a.waitFor('podlegs agent: running', 15_000);
    }
    await until('VTEPs published', async () => lab.nodes.every((n) => api.get('nodes', undefined, n.name)?.metadata.annotations?.['podlegs.io/vtep'] === n.vtep))
      .catch((e: Error) => { throw new Error(`${e.message}; agents said:\n${agents.map((a) => a.stderr()).join('\n')}`); });
    await until('NAD cache', async () => lab.nodes.every((n) => fs.existsSync(path.join(n.dir, 'state', 'nads', 'nf', 'nf-b.json'))));
    const add = async (name: string, n: LabNode, networks: string): Promise<LabPod> => {
      const obj = api.put('pods', { metadata: { name, namespace: 'nf', annotations: { [NETWORKS]: networks } }, spec: { nodeName: n.name }, status: { phase: 'Running' } });
      const pod = await lab.addPod(n, name);
      const conf = { cniVersion: '1.0.0', name: 'cilium', plugins: [lab.ptpPlugin(n), entry(n)] };
      const r = await lab.chain(pod, 'ADD', conf, { args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=${name};K8S_POD_UID=${obj.metadata.uid}` });
      if (r.code !== 0) throw new Error(`ADD ${name}: ${r.stdout}`);
      return pod;
    };
    const [n1, n2] = lab.nodes;
    const pa = await add('pa', n1, JSON.stringify([{ name: 'nf-a', interface: 'net1', ips: ['10.100.0.1/24'] }]));
    await add('pb', n2, JSON.stringify([{ name: 'nf-a', interface: 'net1', ips: ['10.100.0.2/24'] }, { name: 'nf-b', interface: 'net2', ips: ['10.200.0.2/24'] }]));
    const setNetworks = (v: string): void => { const p = api.get('pods', 'nf', 'pa')!; p.metadata.annotations[NETWORKS] = v; api.put('pods', p); };
    const pings = async (): Promise<boolean> => (await lab.sh('ping -n -c 1 -W 0.1 10.200.0.2', { netns: pa.nsName, allowFail: true })).code === 0;
    const floodsFrom = async (from: LabNode, to: string): Promise<boolean> => {
      const r = await lab.sh('bridge -j fdb show dev plvx200', { netns: from.nsName, allowFail: true });
      return r.code === 0 && (JSON.parse(r.stdout || '[]') as Json[]).some((e) => e.mac === '00:00:00:00:00:00' && e.dst === to);
    };
    const floods = (): Promise<boolean> => floodsFrom(n2, n1.vtep);
    const hasNet2 = async (): Promise<boolean> => (await lab.sh('ip -o link show dev net2', { netns: pa.nsName, allowFail: true })).code === 0;
    const statusHasNet2 = (): boolean => (JSON.parse(api.get('pods', 'nf', 'pa')!.metadata.annotations['k8s.v1.cni.cncf.io/network-status'] ?? '[]') as Json[]).some((e) => e.interface === 'net2');
    const plug: number[] = [];
    const written: number[] = [];
    const flooding: number[] = [];
    const unplug: number[] = [];
    for (let i = 0; i < ITER + 1; i++) {
      const t0 = now();
      setNetworks('nf-a@net1,nf-b@net2');
      // When the agent's network-status write lands (the fake API is in this process).
      let tStatus = 0;
      const watch = setInterval(() => { if (!tStatus && statusHasNet2()) tStatus = now(); }, 1);
      const tFlood = await until('both nodes flood VNI 200 to each other', async () => (await floods()) && floodsFrom(n1, n2.vtep));
      const t1 = await until('net2 answers', pings);
      clearInterval(watch);
      const t2 = now();
      setNetworks('nf-a@net1');
      const t3 = await until('n2 flood entry to n1 gone', async () => !(await floods()));
      await until('net2 gone from the pod', async () => !(await hasNet2()));
      if (i === 0) continue; // warm-up
      plug.push(t1 - t0);
      flooding.push(tFlood - t0);
      written.push((tStatus || t1) - t0);
      unplug.push(t3 - t2);
    }
    const row = (name: string, xs: number[]): string => `  ${name.padEnd(58)} p50 ${quantile(xs, 0.5).toFixed(0).padStart(5)} ms   p99 ${quantile(xs, 0.99).toFixed(0).padStart(5)} ms   max ${Math.max(...xs).toFixed(0).padStart(5)} ms   p99/target ${(quantile(xs, 0.99) / TARGET_MS).toFixed(2)}`;
    console.log(`\nHot-plug in Kubernetes mode (2 lab nodes, fake API, ${ITER} plugs + 1 warm-up; polled: one ping (100 ms timeout) or fdb dump process at a time)`);
    console.log(`  load average while measuring: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} (${os.cpus().length} cores)`);
    console.log(row('plug: annotation PATCH → network-status lists the leg', written));
    console.log(row('plug: annotation PATCH → both nodes flood to each other', flooding));
    console.log(row('plug: annotation PATCH → new leg answers a ping', plug));
    console.log(row('unplug: annotation PATCH → other node\'s flood entry gone', unplug));
  } finally {
    for (const a of agents) await a.kill();
    await api.stop();
    await lab.destroy();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
