// Kubernetes mode end to end: the plugin (chained after ptp, as after Cilium)
// and an agent per node talk to the fake API server, which listens inside the
// lab's underlay namespace. Pods select NADs with the NPWG annotation; legs
// selected without `ips` get their addresses from the NAD's IPAM (Debian's
// static and host-local plugins).
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { Lab, LabNode, LabPod, LabProcess, leakCheck } from './lab';
import { CONVERGE_MS, floodDsts, LAB_GRACE_S, waitUntil, managementIp } from './nf';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const API_IP = '192.0.2.1';
jest.setTimeout(120_000); // a loaded 2-core machine stalls for seconds

let lab: Lab;
let api: FakeApiServer;
let kubeconfig: string;
let hostLocalDir: string;
const agents: LabProcess[] = [];

function podlegsEntry(node: LabNode, extra: Json = {}): Json {
  return {
    type: 'podlegs', underlay: { interface: 'ul0' }, kubernetes: { kubeconfig, nodeAsn: 65012, ...extra },
    stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' }, agent: { socket: node.agentSocket },
  };
}
const okDel = (r: { code: number; stdout: string; stderr: string }): void => {
  if (r.code !== 0) throw new Error(`DEL failed (${r.code}): ${r.stdout} ${r.stderr}`);
};
const conflist = (node: LabNode, extra: Json = {}): Json => ({ cniVersion: '0.3.1', name: 'cilium', plugins: [lab.ptpPlugin(node), podlegsEntry(node, extra)] });

function putPod(name: string, node: LabNode, networks: unknown, ns = 'nf'): Json {
  return api.put('pods', {
    metadata: { name, namespace: ns, labels: { app: 'lb' }, annotations: networks === undefined ? {} : { 'k8s.v1.cni.cncf.io/networks': typeof networks === 'string' ? networks : JSON.stringify(networks) } },
    spec: { nodeName: node.name, containers: [{ name: 'nf', image: 'nf' }] },
    status: { phase: 'Pending' },
  });
}

async function addPod(name: string, node: LabNode, networks: unknown, extra: Json = {}): Promise<{ pod: LabPod; out: Json; code: number; obj: Json }> {
  const obj = putPod(name, node, networks);
  const pod = await lab.addPod(node, name);
  // What kubelet (through containerd) passes.
  const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${obj.metadata.uid}`;
  const r = await lab.chain(pod, 'ADD', conflist(node, extra), { args });
  return { pod, out: (r.json ?? {}) as Json, code: r.code, obj };
}

async function mustAdd(name: string, node: LabNode, networks: unknown): Promise<{ pod: LabPod; out: Json; obj: Json }> {
  const r = await addPod(name, node, networks);
  if (r.code !== 0) throw new Error(`ADD ${name} failed (${r.code}): ${JSON.stringify(r.out)}`);
  return r;
}

/** A leg in an ADD result: its MAC and the addresses the result gives its interface (by index). */
function legInResult(out: Json, ifname: string): { mac?: string; ips: string[] } {
  const idx = (out.interfaces ?? []).findIndex((i: Json) => i.name === ifname && i.sandbox);
  return { mac: out.interfaces?.[idx]?.mac, ips: (out.ips ?? []).filter((ip: Json) => idx >= 0 && ip.interface === idx).map((ip: Json) => ip.address) };
}

/** IPv4 addresses (with prefix) on ifname inside the pod, as the kernel reports them. */
async function podAddrs(pod: LabPod, ifname: string): Promise<string[]> {
  const [l] = JSON.parse((await lab.sh(`ip -j -4 addr show dev ${ifname}`, { netns: pod.nsName })).stdout) as Json[];
  return (l?.addr_info ?? []).map((a: Json) => `${a.local}/${a.prefixlen}`);
}

/** The pod's network-status entry for ifname. */
function statusEntry(name: string, ifname: string): Json | undefined {
  const ann = api.get('pods', 'nf', name)?.metadata.annotations?.['k8s.v1.cni.cncf.io/network-status'];
  return (JSON.parse(ann ?? '[]') as Json[]).find((e) => e.interface === ifname);
}

/** host-local's allocations for the NAD config named `network`: one file per address. */
const allocations = (network: string): string[] => {
  try { return fs.readdirSync(path.join(hostLocalDir, network)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort(); } catch { return []; }
};

beforeAll(async () => {
  lab = await Lab.create({ nodes: 3 });
  await lab.sh(`ip addr add ${API_IP}/24 dev ulbr`, { netns: lab.underlay });
  api = new FakeApiServer();
  // The listening socket is created inside the underlay namespace, in this process.
  const port = await api.start((s) => inNetns(`/var/run/netns/${lab.underlay}`, () => s.listen(6443)));
  kubeconfig = path.join(lab.dir, 'podlegs.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigFor(`http://${API_IP}:${port}`, api.token));
  for (const n of lab.nodes) api.put('nodes', { metadata: { name: n.name, labels: { 'podlegs.io/bgp-asn': `650${n.index}0` } }, status: { addresses: [{ type: 'InternalIP', address: managementIp(n) }] } });
  // NAD configs as users write them: with a "name" (what IPAM sees; libcni refuses "/" in it) and IPAM.
  api.put('network-attachment-definitions', { metadata: { name: 'vrrp-a', namespace: 'nf' }, spec: { config: JSON.stringify({
    cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, ipam: { type: 'static', addresses: [{ address: '10.100.0.5/24' }] },
  }) } });
  hostLocalDir = path.join(lab.dir, 'host-local');
  api.put('network-attachment-definitions', { metadata: { name: 'vrrp-h', namespace: 'nf' }, spec: { config: JSON.stringify({
    cniVersion: '1.0.0', name: 'vrrp-h', type: 'podlegs', vni: 200,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.200.0.0/24', rangeStart: '10.200.0.10', rangeEnd: '10.200.0.20' }]], dataDir: hostLocalDir },
  }) } });
  api.put('network-attachment-definitions', { metadata: { name: 'secret', namespace: 'other' }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'podlegs', vni: 300 }) } });
  api.put('network-attachment-definitions', { metadata: { name: 'mv', namespace: 'nf' }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'macvlan', master: 'eth0' }) } });
  for (const n of lab.nodes) {
    const file = path.join(n.dir, 'agent.json');
    fs.writeFileSync(file, JSON.stringify({ ...podlegsEntry(n), type: undefined, log: { level: 'info' }, registry: { type: 'kubernetes' }, agent: { socket: n.agentSocket, gracePeriodSeconds: LAB_GRACE_S } }));
    const a = lab.spawn(n.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: n.name, PODLEGS_RESYNC_MS: '2000' } });
    agents.push(a);
    await a.waitFor('agent started', 15_000);
  }
  // The agents mirror NADs for the plugin: an ADD then needs no NAD GET.
  await waitUntil('NAD cache', async () => lab.nodes.every((n) => ['vrrp-a', 'vrrp-h'].every((nad) => fs.existsSync(path.join(n.dir, 'state', 'nads', 'nf', `${nad}.json`)))), 30_000);
}, 90_000);

afterAll(async () => {
  for (const a of agents) await a.kill();
  await api?.stop();
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

describe('Kubernetes mode', () => {
  let pa: { pod: LabPod; out: Json; obj: Json };
  let pb: { pod: LabPod; out: Json; obj: Json };

  it('each agent publishes its own VTEP on its Node (podlegs.io/vtep), not the InternalIP', async () => {
    for (const n of lab.nodes) {
      await waitUntil(`${n.name} publishes its VTEP`, async () => api.get('nodes', undefined, n.name)?.metadata.annotations?.['podlegs.io/vtep'] === n.vtep, 30_000);
      expect(api.get('nodes', undefined, n.name)?.status.addresses).toEqual([{ type: 'InternalIP', address: managementIp(n) }]);
    }
  });

  it('ADD resolves the annotation through the API with one GET and one PATCH', async () => {
    const before = api.calls.length;
    pa = await addPod('pa', lab.nodes[0], [{ name: 'vrrp-a', interface: 'net1', ips: ['10.100.0.1/24'] }]);
    expect(pa.out).toMatchObject({ cniVersion: '0.3.1' });
    // The ADD's own calls: not the agents' watches, Events or Node PATCHes (VTEP publishing, idempotent).
    const calls = api.calls.slice(before).filter((c) => !c.path.includes('watch=true') && !c.path.includes('/events') && !c.path.startsWith('/api/v1/nodes/'));
    expect(calls).toEqual([{ method: 'GET', path: '/api/v1/namespaces/nf/pods/pa' }, { method: 'PATCH', path: '/api/v1/namespaces/nf/pods/pa' }]);
    expect(pa.out.interfaces.map((i: Json) => i.name)).toEqual(expect.arrayContaining(['eth0', 'net1']));
  });

  it('writes network-status (eth0 first, default) and the BGP peer annotation', () => {
    const ann = api.get('pods', 'nf', 'pa')!.metadata.annotations;
    const status = JSON.parse(ann['k8s.v1.cni.cncf.io/network-status']);
    const eth0 = pa.out.interfaces.find((i: Json) => i.name === 'eth0');
    const gw = pa.out.ips[0].gateway;
    expect(status[0]).toMatchObject({ name: 'cilium', interface: 'eth0', default: true, mac: eth0.mac, ips: [pa.out.ips[0].address.split('/')[0]] });
    expect(status[1]).toMatchObject({ name: 'nf/vrrp-a', interface: 'net1', ips: ['10.100.0.1'], 'podlegs.io/vni': 100 });
    expect(JSON.parse(ann['podlegs.io/bgp-peer'])).toEqual({ address: gw, asn: 65012 });
  });

  it('a selection without ips (short form vrrp-a@net1) gets its address from the NAD\'s IPAM: Debian static', async () => {
    pb = await mustAdd('pb', lab.nodes[1], 'vrrp-a@net1');
    const leg = legInResult(pb.out, 'net1');
    expect(leg.ips).toEqual(['10.100.0.5/24']);
    expect(await podAddrs(pb.pod, 'net1')).toEqual(['10.100.0.5/24']);
    expect(statusEntry('pb', 'net1')).toMatchObject({ name: 'nf/vrrp-a', ips: ['10.100.0.5'], mac: leg.mac, 'podlegs.io/vni': 100 });
  });

  it('two pods selecting one NAD reach each other over L2 across nodes', async () => {
    await waitUntil('flood n1→n2', async () => (await floodDsts(lab, lab.nodes[0], 100))?.includes(lab.nodes[1].vtep), 30_000);
    await lab.sh('ping -c 2 -W 2 10.100.0.5', { netns: pa.pod.nsName });
    expect(await floodDsts(lab, lab.nodes[2], 100)).toBeUndefined(); // n3 has no segment
  });

  it('without an ASN in the config, the BGP peer annotation takes the node label (via the agent)', async () => {
    await waitUntil('node ASN mirrored', async () => fs.existsSync(path.join(lab.nodes[2].dir, 'state', 'node-asn.json')), 30_000);
    const r = await addPod('pe', lab.nodes[2], 'vrrp-h@net1', { nodeAsn: undefined });
    expect(r.code).toBe(0);
    const peer = JSON.parse(api.get('pods', 'nf', 'pe')!.metadata.annotations['podlegs.io/bgp-peer']);
    expect(peer).toEqual({ address: r.out.ips[0].gateway, asn: 65030 });
    okDel(await lab.chain(r.pod, 'DEL', conflist(lab.nodes[2], { nodeAsn: undefined }), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pe' }));
  });

  it('events: one AddedInterface per leg, posted by the agents', async () => {
    await waitUntil('events', async () => api.list('events').filter((e) => e.reason === 'AddedInterface').length >= 2, 30_000);
    const ev = api.list('events').find((e) => e.involvedObject.name === 'pb')!;
    expect(ev).toMatchObject({ reason: 'AddedInterface', type: 'Normal', involvedObject: { kind: 'Pod', namespace: 'nf' } });
    expect(ev.message).toContain('net1');
  });

  it('host-local NAD IPAM: an address from the range in the pod, the result and network-status; L2 across nodes; DEL releases it', async () => {
    const hs = [await mustAdd('ph1', lab.nodes[0], 'vrrp-h@net1'), await mustAdd('ph2', lab.nodes[2], 'vrrp-h@net1')];
    const addrs: string[] = [];
    for (const h of hs) {
      const leg = legInResult(h.out, 'net1');
      expect(leg.ips).toEqual([expect.stringMatching(/^10\.200\.0\.(1\d|20)\/24$/)]);
      const ip = leg.ips[0].split('/')[0];
      addrs.push(ip);
      expect(await podAddrs(h.pod, 'net1')).toEqual(leg.ips);
      expect(statusEntry(h.pod.name, 'net1')).toMatchObject({ name: 'nf/vrrp-h', ips: [ip], mac: leg.mac, 'podlegs.io/vni': 200 });
      // host-local keeps one file per address under dataDir/<network name>: the NAD config's name.
      expect(fs.readFileSync(path.join(hostLocalDir, 'vrrp-h', ip), 'utf8')).toContain(h.pod.containerId);
    }
    expect(allocations('vrrp-h')).toEqual([...addrs].sort());
    expect(new Set(addrs).size).toBe(2);
    await waitUntil('flood n1→n3 (VNI 200)', async () => (await floodDsts(lab, lab.nodes[0], 200))?.includes(lab.nodes[2].vtep), 30_000);
    await lab.sh(`ping -c 2 -W 2 ${addrs[1]}`, { netns: hs[0].pod.nsName });
    for (const h of hs) {
      okDel(await lab.chain(h.pod, 'DEL', conflist(h.pod.node), { args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=${h.pod.name}` }));
      api.remove('pods', 'nf', h.pod.name);
    }
    expect(allocations('vrrp-h')).toEqual([]);
  });

  it('deleting a pod object removes it from the other nodes\' flood lists', async () => {
    api.remove('pods', 'nf', 'pb');
    await waitUntil('flood n1→n2 gone', async () => !(await floodDsts(lab, lab.nodes[0], 100))?.includes(lab.nodes[1].vtep), 30_000);
    okDel(await lab.chain(pb.pod, 'DEL', conflist(lab.nodes[1]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pb' }));
  });

  it('refuses a NAD from a foreign namespace and attaches nothing', async () => {
    const plLinks = async (): Promise<string[]> => JSON.parse((await lab.sh('ip -j link', { netns: lab.nodes[2].nsName })).stdout)
      .map((l: Json) => l.ifname).filter((l: string) => /^pl/.test(l)).sort();
    const before = await plLinks(); // a segment an earlier DEL emptied may still be in its grace period
    const r = await addPod('pc', lab.nodes[2], 'other/secret@net1');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatchObject({ code: 7 });
    expect(r.out.msg).toMatch(/other\/secret/);
    expect(await plLinks()).toEqual(before);
    await lab.chain(r.pod, 'DEL', conflist(lab.nodes[2]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pc' });
  });

  it('allows the foreign namespace once it is listed in globalNamespaces', async () => {
    const r = await addPod('pg', lab.nodes[2], 'other/secret@net3', { globalNamespaces: ['other'] });
    expect(r.code).toBe(0);
    expect(r.out.interfaces.some((i: Json) => i.name === 'net3')).toBe(true);
    okDel(await lab.chain(r.pod, 'DEL', conflist(lab.nodes[2], { globalNamespaces: ['other'] }), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pg' }));
  });

  it('refuses a NAD of another type without Multus', async () => {
    const r = await addPod('pm', lab.nodes[2], 'mv@net1');
    expect(r.out).toMatchObject({ code: 7 });
    expect(r.out.msg).toMatch(/macvlan/);
    await lab.chain(r.pod, 'DEL', conflist(lab.nodes[2]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pm' });
  });

  // The deadline itself is asserted in k8s-api.test.ts (a silent TLS API); here: the outcome.
  it('fails with code 11 while the API does not answer, and attaches nothing', async () => {
    api.faults.push({ hang: true, times: 10, match: /pods\/pd$/ });
    const r = await addPod('pd', lab.nodes[2], 'vrrp-a@net1');
    expect(r.out).toMatchObject({ code: 11 });
    expect(JSON.parse((await lab.sh('ip -j link', { netns: r.pod.nsName })).stdout).map((l: Json) => l.ifname)).not.toContain('net1');
    api.faults.length = 0;
    await lab.chain(r.pod, 'DEL', conflist(lab.nodes[2]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pd' });
  });

  it('DEL needs no API: it works with the API down, and leaves nothing', async () => {
    api.faults.push({ status: 500, times: 1000 });
    const r = await lab.chain(pa.pod, 'DEL', conflist(lab.nodes[0]), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pa' });
    api.faults.length = 0;
    okDel(r);
    // The agents remove the segments the DELs emptied once their grace period has passed.
    const plLinks = async (): Promise<string[]> => (await Promise.all(lab.nodes.map(async (n) => JSON.parse((await lab.sh('ip -j link', { netns: n.nsName })).stdout)
      .map((l: Json) => `${n.name}: ${l.ifname}`)))).flat().filter((l: string) => /: pl/.test(l));
    let left: string[] = [];
    await waitUntil('emptied segments removed', async () => (left = await plLinks()).length === 0, CONVERGE_MS).catch(() => undefined);
    expect(left).toEqual([]);
  });
  it("a 1.1.0 runtime's STATUS and GC in Kubernetes mode (no file registry): STATUS passes, GC removes what is not valid", async () => {
    const n = lab.nodes[0];
    const entry = { cniVersion: '1.1.0', name: 'cilium', ...podlegsEntry(n) };
    const status = await lab.exec(n, 'podlegs', { command: 'STATUS', conf: entry });
    expect({ code: status.code, stdout: status.stdout }).toEqual({ code: 0, stdout: '' });

    const pg = await mustAdd('pgc', n, 'vrrp-h@net1');
    const stateDir = path.join(n.dir, 'state', 'attachments');
    const recorded = fs.readdirSync(stateDir).map((f) => JSON.parse(fs.readFileSync(path.join(stateDir, f), 'utf8')) as { containerId: string; ifname: string });
    expect(recorded.map((a) => a.containerId)).toContain(pg.pod.containerId);
    expect(allocations('vrrp-h')).toHaveLength(1);
    const valid = recorded.filter((a) => a.containerId !== pg.pod.containerId).map((a) => ({ containerID: a.containerId, ifname: a.ifname }));
    const gc = await lab.exec(n, 'podlegs', { command: 'GC', conf: { ...entry, 'cni.dev/valid-attachments': valid } });
    expect({ code: gc.code, stdout: gc.stdout }).toEqual({ code: 0, stdout: '' });
    expect(fs.readdirSync(stateDir).filter((f) => f.startsWith(pg.pod.containerId))).toEqual([]);
    expect(allocations('vrrp-h')).toEqual([]); // GC released the IPAM allocation with the recorded context
    expect(JSON.parse((await lab.sh('ip -j link', { netns: pg.pod.nsName })).stdout).map((l: Json) => l.ifname)).not.toContain('net1');
    await lab.chain(pg.pod, 'DEL', conflist(n), { args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pgc' });
  });
});
