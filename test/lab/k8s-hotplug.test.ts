// Hot-plug in Kubernetes mode against the fake API: the node agent attaches a leg when a running
// pod's networks annotation gains an element and detaches it when the element goes, through
// ADD's leg code (all-or-nothing), with ADD's validation; network-status and membership follow
// on every node. Meanwhile a 10 ms ping over the pod's untouched net1 must lose nothing.
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { Lab, LabNode, LabPod, LabProcess, leakCheck } from './lab';
import { CONVERGE_MS, floodDsts, LAB_GRACE_S, waitUntil, managementIp } from './nf';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const API_IP = '192.0.2.1';
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const STATUS = 'k8s.v1.cni.cncf.io/network-status';
const PLUG_BOUND_MS = 20_000; // a loaded 2-core machine stalls for seconds; the bench measures the real figure
jest.setTimeout(180_000);

let lab: Lab;
let api: FakeApiServer;
let kubeconfig: string;
let hostLocalDir: string;
const agents: LabProcess[] = [];

function podlegsEntry(node: LabNode): Json {
  return {
    type: 'podlegs', underlay: { interface: 'ul0' }, kubernetes: { kubeconfig, nodeAsn: 65012 },
    stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' }, agent: { socket: node.agentSocket },
  };
}
const conflist = (node: LabNode): Json => ({ cniVersion: '1.0.0', name: 'cilium', plugins: [lab.ptpPlugin(node), podlegsEntry(node)] });
const podArgs = (name: string, pod: LabPod, uid: string): string => `IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${uid}`;

async function addPod(name: string, node: LabNode, networks: unknown): Promise<LabPod> {
  const obj = api.put('pods', {
    metadata: { name, namespace: 'nf', annotations: { [NETWORKS]: typeof networks === 'string' ? networks : JSON.stringify(networks) } },
    spec: { nodeName: node.name, containers: [{ name: 'nf', image: 'nf' }] }, status: { phase: 'Running' },
  });
  const pod = await lab.addPod(node, name);
  const r = await lab.chain(pod, 'ADD', conflist(node), { args: podArgs(name, pod, obj.metadata.uid) });
  if (r.code !== 0) throw new Error(`ADD ${name} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return pod;
}

/** What `kubectl annotate --overwrite` does: one change of the pod object (a MODIFIED event). */
function setNetworks(name: string, networks: unknown): void {
  const pod = api.get('pods', 'nf', name)!;
  pod.metadata.annotations[NETWORKS] = typeof networks === 'string' ? networks : JSON.stringify(networks);
  api.put('pods', pod);
}

const status = (name: string): Json[] => JSON.parse(api.get('pods', 'nf', name)?.metadata.annotations?.[STATUS] ?? '[]');
const podLinks = async (pod: LabPod): Promise<string[]> => (JSON.parse((await lab.sh('ip -j link', { netns: pod.nsName })).stdout) as Json[]).map((l) => l.ifname).sort();
const nodeLinks = async (node: LabNode): Promise<string[]> => (JSON.parse((await lab.sh('ip -j link', { netns: node.nsName })).stdout) as Json[]).map((l) => l.ifname).filter((n: string) => n.startsWith('pl')).sort();
const events = (pod: string, reason: string): Json[] => api.list('events').filter((e) => e.involvedObject.name === pod && e.reason === reason);
const allocations = (network: string): string[] => {
  try { return fs.readdirSync(path.join(hostLocalDir, network)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)); } catch { return []; }
};
const stateLegs = (node: LabNode, pod: LabPod): string[] => {
  const s = JSON.parse(fs.readFileSync(path.join(node.dir, 'state', 'attachments', `${pod.containerId}_eth0.json`), 'utf8')) as Json;
  return s.legs.map((l: Json) => l.ifname);
};

/** A 10 ms ping; stop() returns the icmp_seq numbers that got no reply (the one in flight at the stop excepted). */
function startPing(pod: LabPod, ip: string): { stop(): Promise<{ sent: number; lost: number[] }> } {
  const p = lab.spawn(pod.netns, ['ping', '-n', '-i', '0.01', '-W', '2', ip]);
  return {
    async stop() {
      process.kill(p.pid, 'SIGINT');
      await p.exited;
      const seqs = new Set([...p.stdout().matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
      const last = Math.max(0, ...seqs);
      const lost: number[] = [];
      for (let s = 1; s < last; s++) if (!seqs.has(s)) lost.push(s);
      return { sent: last, lost };
    },
  };
}

let pa: LabPod; // n1: starts with nf-a@net1, gains nf-b
let pb: LabPod; // n2: nf-a (net1) and nf-b (net2) from the start
let ping: ReturnType<typeof startPing>;

beforeAll(async () => {
  lab = await Lab.create({ nodes: 2 });
  await lab.sh(`ip addr add ${API_IP}/24 dev ulbr`, { netns: lab.underlay });
  api = new FakeApiServer();
  const port = await api.start((s) => inNetns(`/var/run/netns/${lab.underlay}`, () => s.listen(6443)));
  kubeconfig = path.join(lab.dir, 'podlegs.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigFor(`http://${API_IP}:${port}`, api.token));
  for (const n of lab.nodes) api.put('nodes', { metadata: { name: n.name }, status: { addresses: [{ type: 'InternalIP', address: managementIp(n) }] } });
  hostLocalDir = path.join(lab.dir, 'host-local');
  const nad = (name: string, ns: string, cfg: Json): void => { api.put('network-attachment-definitions', { metadata: { name, namespace: ns }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', name, type: 'podlegs', ...cfg }) } }); };
  nad('nf-a', 'nf', { vni: 100, ipam: { type: 'static', addresses: [{ address: '10.100.0.1/24' }] } });
  nad('nf-b', 'nf', { vni: 200, ipam: { type: 'host-local', ranges: [[{ subnet: '10.200.0.0/24', rangeStart: '10.200.0.10', rangeEnd: '10.200.0.20' }]], dataDir: hostLocalDir } });
  nad('nf-c', 'nf', { vni: 300 });
  nad('secret', 'other', { vni: 400 });
  for (const n of lab.nodes) {
    const file = path.join(n.dir, 'agent.json');
    fs.writeFileSync(file, JSON.stringify({ ...podlegsEntry(n), type: undefined, log: { level: 'info' }, registry: { type: 'kubernetes' }, agent: { socket: n.agentSocket, gracePeriodSeconds: LAB_GRACE_S } }));
    const a = lab.spawn(n.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: n.name, PODLEGS_RESYNC_MS: '2000' } });
    agents.push(a);
    await a.waitFor('agent started', 15_000);
  }
  await waitUntil('NAD cache', async () => lab.nodes.every((n) => fs.existsSync(path.join(n.dir, 'state', 'nads', 'nf', 'nf-b.json'))), 30_000);
  await waitUntil('VTEPs published', async () => lab.nodes.every((n) => api.get('nodes', undefined, n.name)?.metadata.annotations?.['podlegs.io/vtep'] === n.vtep), 30_000);
  pa = await addPod('pa', lab.nodes[0], 'nf-a@net1');
  pb = await addPod('pb', lab.nodes[1], [{ name: 'nf-a', interface: 'net1', ips: ['10.100.0.2/24'] }, { name: 'nf-b', interface: 'net2', ips: ['10.200.0.2/24'] }]);
  await waitUntil('net1 across nodes', async () => (await lab.sh('ping -n -c 1 -W 1 10.100.0.2', { netns: pa.nsName, allowFail: true })).code === 0, 30_000);
  ping = startPing(pa, '10.100.0.2');
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a.kill();
  await api?.stop();
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

describe('hot-plug (Kubernetes mode, the node agent)', () => {
  let net2Ip = '';

  it('the annotation gains nf-b@net2: net2 appears in the running pod, answers across nodes, network-status lists it, the other node floods to this one', async () => {
    const before = await podLinks(pa);
    setNetworks('pa', 'nf-a@net1,nf-b@net2');
    await waitUntil('net2 in network-status', async () => status('pa').some((e) => e.interface === 'net2'), PLUG_BOUND_MS);
    const entry = status('pa').find((e) => e.interface === 'net2')!;
    expect(entry).toMatchObject({ name: 'nf/nf-b', 'podlegs.io/vni': 200, ips: [expect.stringMatching(/^10\.200\.0\.(1\d|20)$/)] });
    net2Ip = entry.ips[0];
    expect(allocations('nf-b')).toEqual([net2Ip]);
    expect(await podLinks(pa)).toEqual([...before, 'net2'].sort());
    expect(stateLegs(lab.nodes[0], pa)).toEqual(['net1', 'net2']); // the one record DEL uses
    await waitUntil('n2 floods VNI 200 to n1', async () => (await floodDsts(lab, lab.nodes[1], 200))?.includes(lab.nodes[0].vtep), PLUG_BOUND_MS);
    await waitUntil('net2 answers across nodes', async () => (await lab.sh('ping -n -c 1 -W 1 10.200.0.2', { netns: pa.nsName, allowFail: true })).code === 0, PLUG_BOUND_MS);
    expect(status('pa')[0]).toMatchObject({ interface: 'eth0', default: true }); // eth0 kept, first
    await waitUntil('AddedInterface net2', async () => events('pa', 'AddedInterface').some((e) => e.message.includes('net2')), PLUG_BOUND_MS);
    // The runtime's CHECK (prevResult = ADD's result, without net2) still passes, net2 checked too.
    const check = await lab.exec(lab.nodes[0], 'podlegs', { command: 'CHECK', pod: pa, conf: { ...podlegsEntry(lab.nodes[0]), name: 'cilium', cniVersion: '1.0.0', prevResult: lab.cachedResult(pa, 'cilium') } });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: '' });
    await lab.sh('ip link set dev net2 down', { netns: pa.nsName });
    const broken = await lab.exec(lab.nodes[0], 'podlegs', { command: 'CHECK', pod: pa, conf: { ...podlegsEntry(lab.nodes[0]), name: 'cilium', cniVersion: '1.0.0', prevResult: lab.cachedResult(pa, 'cilium') } });
    expect(broken.stdout).toMatch(/leg net2 is down/);
    await lab.sh('ip link set dev net2 up', { netns: pa.nsName });
  });

  it('refused elements (unknown NAD, foreign namespace, name clash) change nothing and an Event says why', async () => {
    const links = await podLinks(pa);
    const before = status('pa');
    const n1 = await nodeLinks(lab.nodes[0]);
    setNetworks('pa', 'nf-a@net1,nf-b@net2,nope@net3,other/secret@net4,nf-c@lo');
    await waitUntil('three warnings', async () => events('pa', 'AddInterfaceRefused').length >= 3, PLUG_BOUND_MS);
    const msgs = events('pa', 'AddInterfaceRefused').map((e) => `${e.type}: ${e.message}`).sort();
    expect(msgs).toEqual([
      expect.stringMatching(/^Warning: nf-c@lo not attached: interface lo already exists/),
      expect.stringMatching(/^Warning: nope@net3 not attached: NetworkAttachmentDefinition nf\/nope does not exist/),
      expect.stringMatching(/^Warning: other\/secret@net4 not attached: .*may not use NetworkAttachmentDefinition other\/secret/),
    ]);
    expect(await podLinks(pa)).toEqual(links);
    expect(await nodeLinks(lab.nodes[0])).toEqual(n1);
    expect(status('pa')).toEqual(before);
    expect(await floodDsts(lab, lab.nodes[1], 300)).toBeUndefined();
    expect(agents[0].stdout() + agents[0].stderr()).toContain('hot-plug refused'); // the agent logs to stderr here
  });

  it('the element removed: net2 gone from the pod, the node and network-status, its address released, the other node stops flooding to this one', async () => {
    setNetworks('pa', 'nf-a@net1');
    await waitUntil('net2 gone from network-status', async () => !status('pa').some((e) => e.interface === 'net2'), PLUG_BOUND_MS);
    expect(await podLinks(pa)).not.toContain('net2');
    await waitUntil('n2 stops flooding VNI 200 to n1', async () => !(await floodDsts(lab, lab.nodes[1], 200))?.includes(lab.nodes[0].vtep), PLUG_BOUND_MS);
    expect(await floodDsts(lab, lab.nodes[0], 200)).toBeUndefined(); // segment removed with its last leg
    expect(allocations('nf-b')).toEqual([]);
    expect(stateLegs(lab.nodes[0], pa)).toEqual(['net1']);
    expect((await nodeLinks(lab.nodes[0])).filter((l) => l.startsWith('plbr'))).toEqual(['plbr100']);
    await waitUntil('RemovedInterface net2', async () => events('pa', 'RemovedInterface').some((e) => e.message.includes('net2')), PLUG_BOUND_MS);
  });

  it('an element without interface gets the next free netN, and is unplugged by what was recorded', async () => {
    setNetworks('pa', 'nf-a@net1,nf-b');
    await waitUntil('nf-b plugged as net2', async () => status('pa').some((e) => e.interface === 'net2' && e.name === 'nf/nf-b'), PLUG_BOUND_MS);
    await waitUntil('net2 answers', async () => (await lab.sh('ping -n -c 1 -W 1 10.200.0.2', { netns: pa.nsName, allowFail: true })).code === 0, PLUG_BOUND_MS);
    setNetworks('pa', 'nf-a@net1');
    await waitUntil('unplugged', async () => !status('pa').some((e) => e.interface === 'net2') && !(await podLinks(pa)).includes('net2'), PLUG_BOUND_MS);
  });

  it('a NAD edit that cannot be applied live (MTU): the running leg keeps its MTU, is marked stale with a warning; a new pod gets the new MTU', async () => {
    const nad = api.get('network-attachment-definitions', 'nf', 'nf-a')!;
    const old = nad.spec.config;
    api.put('network-attachment-definitions', { ...nad, spec: { config: JSON.stringify({ ...JSON.parse(old), mtu: 1300 }) } });
    await waitUntil('net1 marked stale', async () => typeof status('pa').find((e) => e.interface === 'net1')?.['podlegs.io/stale'] === 'string', PLUG_BOUND_MS);
    const entry = status('pa').find((e) => e.interface === 'net1')!;
    expect(entry['podlegs.io/stale']).toMatch(/mtu \d+ → 1300/);
    expect(entry.mtu).not.toBe(1300); // network-status says what the pod has
    const [l] = JSON.parse((await lab.sh('ip -j link show dev net1', { netns: pa.nsName })).stdout) as Json[];
    expect(l.mtu).toBe(entry.mtu);
    await waitUntil('warning event', async () => events('pa', 'NetworkConfigStale').some((e) => e.type === 'Warning' && /nf\/nf-a/.test(e.message)), PLUG_BOUND_MS);
    const pc = await addPod('pc', lab.nodes[1], [{ name: 'nf-a', interface: 'net1', ips: ['10.100.0.3/24'] }]);
    const [lc] = JSON.parse((await lab.sh('ip -j link show dev net1', { netns: pc.nsName })).stdout) as Json[];
    expect(lc.mtu).toBe(1300);
    expect(status('pc').find((e) => e.interface === 'net1')).not.toHaveProperty(['podlegs.io/stale']);
    api.put('network-attachment-definitions', { ...api.get('network-attachment-definitions', 'nf', 'nf-a')!, spec: { config: old } });
    await waitUntil('stale mark gone once the NAD matches again', async () => status('pa').find((e) => e.interface === 'net1')?.['podlegs.io/stale'] === undefined, PLUG_BOUND_MS);
    const r = await lab.chain(pc, 'DEL', conflist(lab.nodes[1]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pc' });
    expect(r.code).toBe(0);
    api.remove('pods', 'nf', 'pc');
  });

  it('a recreated sandbox: the old one (not DELed yet) gets nothing, the one the pod\'s last ADD published gets the leg', async () => {
    const n1 = lab.nodes[0];
    const a = [{ name: 'nf-a', interface: 'net1', ips: ['10.100.0.7/24'] }];
    const old = await addPod('pr', n1, a);
    const uid = api.get('pods', 'nf', 'pr')!.metadata.uid;
    const fresh = await lab.addPod(n1, 'pr-again'); // the runtime made a new sandbox for the same pod object
    const r = await lab.chain(fresh, 'ADD', conflist(n1), { args: podArgs('pr', fresh, uid) });
    expect(r.code).toBe(0);
    expect(api.get('pods', 'nf', 'pr')!.metadata.annotations['podlegs.io/sandbox']).toBe(fresh.containerId);
    setNetworks('pr', [...a, { name: 'nf-b', interface: 'net2', ips: ['10.200.0.7/24'] }]);
    await waitUntil('net2 in the new sandbox', async () => (await podLinks(fresh)).includes('net2'), PLUG_BOUND_MS);
    expect(await podLinks(old)).not.toContain('net2');
    expect(stateLegs(n1, old)).toEqual(['net1']);
    for (const p of [old, fresh]) expect((await lab.chain(p, 'DEL', conflist(n1), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pr' })).code).toBe(0);
    api.remove('pods', 'nf', 'pr');
  });

  it('meanwhile the 10 ms ping over the untouched net1 lost nothing', async () => {
    const { sent, lost } = await ping.stop();
    expect(sent).toBeGreaterThan(100);
    expect(lost).toEqual([]);
  });

  it('DEL removes hot-plugged legs too (the state file is the one record)', async () => {
    setNetworks('pa', 'nf-a@net1,nf-b@net2');
    await waitUntil('net2 back', async () => stateLegs(lab.nodes[0], pa).includes('net2') && status('pa').some((e) => e.interface === 'net2'), PLUG_BOUND_MS);
    for (const [p, n] of [[pa, lab.nodes[0]], [pb, lab.nodes[1]]] as const) {
      const r = await lab.chain(p, 'DEL', conflist(n), { args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=${p.name}` });
      expect(r.code).toBe(0);
      let left: string[] = [];
      await waitUntil('the agent removed the emptied segments', async () => (left = await nodeLinks(n)).length === 0, CONVERGE_MS).catch(() => undefined);
      expect(left).toEqual([]);
    }
    expect(allocations('nf-b')).toEqual([]);
  });
});
