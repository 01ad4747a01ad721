// Multus delegate mode across two nodes in Kubernetes mode (registry.type kubernetes, an agent on
// each node, the fake API server inside the lab's underlay namespace). The test plays Multus the
// way Multus drives a delegate through libcni:
//   ADD  the cluster network (ptp standing in for Cilium) as eth0; then podlegs with the NAD's
//        config on stdin plus runtimeConfig {ips, mac} for the capabilities the NAD declares,
//        CNI_IFNAME=net1 and Multus's CNI_ARGS; then Multus's own PATCH of network-status
//        (eth0 first, then {name: "default/vrrp-a", interface, ips, mac, dns: {}}: no podlegs keys).
//   DEL  network-status unset ("[]"), podlegs DEL (cached ADD result as prevResult), eth0 DEL;
//        kubelet then deletes the pod object.
// podlegs writes nothing to the API in this mode: the agents learn the members of other nodes
// from the network-status Multus wrote, and the NAD it names.
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { CniOutcome, Lab, LabNode, LabPod, LabProcess } from './lab';
import { agentProblems, destroyChecked, floodDsts, linkNames, neighMac, rootSnapshot, waitUntil, managementIp } from './nf';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
jest.setTimeout(180_000); // a loaded 2-core machine stalls for seconds

const API_IP = '192.0.2.1';
const STATUS = 'k8s.v1.cni.cncf.io/network-status';
const ZERO = '00:00:00:00:00:00';
/** Convergence bound for the agents (watch → reconcile), generous for a loaded machine. */
const FOLLOW_MS = 30_000;
/** The NAD as a user writes it for static addresses: Multus fills them in from the selection. */
const NAD_CONFIG = { cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, capabilities: { ips: true, mac: true }, ipam: { type: 'static' } };

interface Selection { name: string; interface: string; ips: string[]; mac: string }
interface MultusPod { pod: LabPod; obj: Json; sel: Selection; args: string; eth0: Json; net1: Json }

let lab: Lab | undefined;
let api: FakeApiServer;
let apiUrl: string;
let root: string[] = [];
const agents: LabProcess[] = [];
const pods = new Map<string, MultusPod>();
const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };
const node = (i: number): LabNode => get().nodes[i - 1];
const nodeConfFile = (n: LabNode): string => path.join(n.dir, 'node.json');

const must = (what: string, r: CniOutcome): CniOutcome => {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r;
};

/** libcni's injectRuntimeConfig: only the capabilities the NAD declares, from the selection. */
function runtimeConfig(sel: Selection): Json {
  const rc: Json = {};
  if (NAD_CONFIG.capabilities.ips) rc.ips = sel.ips;
  if (NAD_CONFIG.capabilities.mac) rc.mac = sel.mac;
  return rc;
}

/** Multus's network-status for one interface of a result (the sandbox interface named ifname). */
function statusFromResult(name: string, result: Json, ifname: string, isDefault: boolean): Json {
  const idx = result.interfaces.findIndex((i: Json) => i.name === ifname && i.sandbox);
  const ips = (result.ips ?? []).filter((ip: Json) => ip.interface === idx);
  const gw = ips.map((ip: Json) => ip.gateway).filter(Boolean);
  return {
    name, interface: ifname, ips: ips.map((ip: Json) => ip.address.split('/')[0]), mac: result.interfaces[idx].mac,
    ...(isDefault ? { default: true } : {}), dns: {}, ...(isDefault && gw.length ? { gateway: gw } : {}),
  };
}

/** What Multus does after its delegates: a PATCH of the pod's network-status, here with curl from the node. */
async function patchNetworkStatus(n: LabNode, name: string, entries: Json[]): Promise<void> {
  // Multus' format: each entry indented by 4, joined into one list.
  const value = `[${entries.map((e) => JSON.stringify(e, null, 4)).join(',')}]`;
  const body = path.join(get().dir, `patch-${name}.json`);
  fs.writeFileSync(body, JSON.stringify({ metadata: { annotations: { [STATUS]: value } } }));
  const r = await get().sh(`curl -sS -o /dev/null -w '%{http_code}' -X PATCH -H 'Authorization: Bearer ${api.token}' ` +
    `-H 'Content-Type: application/merge-patch+json' --data-binary @${body} ${apiUrl}/api/v1/namespaces/default/pods/${name}`, { netns: n.nsName });
  expect(r.stdout).toBe('200');
}

/** Calls about namespaced objects made while fn ran (the agents' cluster-wide lists and watches, and events, left out). */
async function apiCallsDuring(fn: () => Promise<void>): Promise<{ method: string; path: string }[]> {
  const before = api.calls.length;
  await fn();
  return api.calls.slice(before).filter((c) => c.path.includes('/namespaces/') && !c.path.includes('watch=true') && !c.path.includes('/events'));
}

/** A pod scheduled on node i selecting vrrp-a with ips and mac, set up as Multus does. */
async function multusAdd(i: number, name: string, ip: string, mac: string): Promise<MultusPod> {
  const n = node(i);
  const sel: Selection = { name: 'vrrp-a', interface: 'net1', ips: [ip], mac };
  const obj = api.put('pods', {
    metadata: { name, namespace: 'default', annotations: { 'k8s.v1.cni.cncf.io/networks': JSON.stringify([sel]) } },
    spec: { nodeName: n.name, containers: [{ name: 'nf', image: 'nf' }] }, status: { phase: 'Pending' },
  });
  const pod = await get().addPod(n, name);
  // Multus builds these itself for every delegate (pkg/types: CreateCNIRuntimeConf).
  const args = `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${obj.metadata.uid}`;
  const eth0 = must(`${name} eth0`, await get().chain(pod, 'ADD', { cniVersion: '1.0.0', name: 'cilium', plugins: [get().ptpPlugin(n)] }, { args })).json as Json;
  let net1: Json = {};
  const calls = await apiCallsDuring(async () => {
    net1 = must(`${name} net1`, await get().exec(n, 'podlegs', {
      command: 'ADD', pod, ifname: 'net1', args, conf: { ...NAD_CONFIG, runtimeConfig: runtimeConfig(sel) }, env: { PODLEGS_NODE_CONFIG: nodeConfFile(n) },
    })).json as Json;
  });
  expect(calls).toEqual([]); // Multus reads the pod and NADs and writes network-status, not its delegate
  await patchNetworkStatus(n, name, [statusFromResult('cilium', eth0, 'eth0', true), statusFromResult('default/vrrp-a', net1, 'net1', false)]);
  const p: MultusPod = { pod, obj, sel, args, eth0, net1 };
  pods.set(name, p);
  return p;
}

/**
 * Multus's DEL (network-status unset first, delegates in reverse), then kubelet deletes the pod object.
 * netnsGone: the sandbox's netns is already gone (Multus then leaves network-status alone; the pod object goes).
 */
async function multusDel(name: string, o: { netnsGone?: boolean } = {}): Promise<void> {
  const p = pods.get(name)!;
  const n = p.pod.node;
  if (o.netnsGone) await get().removePod(p.pod);
  else await patchNetworkStatus(n, name, []);
  must(`${name} DEL net1`, await get().exec(n, 'podlegs', {
    command: 'DEL', pod: p.pod, ifname: 'net1', args: p.args, env: { PODLEGS_NODE_CONFIG: nodeConfFile(n) },
    conf: { ...NAD_CONFIG, runtimeConfig: runtimeConfig(p.sel), prevResult: p.net1 },
  }));
  must(`${name} DEL eth0`, await get().chain(p.pod, 'DEL', { cniVersion: '1.0.0', name: 'cilium', plugins: [get().ptpPlugin(n)] }, { args: p.args }));
  api.remove('pods', 'default', name);
  pods.delete(name);
  if (!o.netnsGone) await get().removePod(p.pod);
}

/** Unicast entries (MAC → remote VTEP) of plvx100 on node i, sorted by MAC. */
async function macEntries(i: number): Promise<Record<string, string>> {
  const r = await get().sh('bridge -j fdb show dev plvx100', { netns: node(i).nsName, allowFail: true });
  if (r.code !== 0) return {};
  const e = JSON.parse(r.stdout.trim() || '[]') as { mac: string; dst?: string }[];
  return Object.fromEntries(e.filter((x) => x.mac !== ZERO && x.dst).map((x) => [x.mac, x.dst as string]).sort());
}

/** Waits until node i's flood list and MAC entries for VNI 100 are exactly these (bounded, no timing asserted). */
async function expectFdb(i: number, flood: string[] | undefined, macs: Record<string, string>): Promise<void> {
  const want = JSON.stringify({ flood: flood?.sort(), macs: Object.fromEntries(Object.entries(macs).sort()) });
  let last = '';
  await waitUntil(`n${i} FDB of VNI 100`, async () => (last = JSON.stringify({ flood: await floodDsts(get(), node(i), 100), macs: await macEntries(i) })) === want, FOLLOW_MS)
    .catch(() => expect(JSON.parse(last)).toEqual(JSON.parse(want)));
}

beforeAll(async () => {
  root = rootSnapshot();
  lab = await Lab.create({ nodes: 2 });
  await lab.sh(`ip addr add ${API_IP}/24 dev ulbr`, { netns: lab.underlay });
  api = new FakeApiServer();
  const port = await api.start((s) => inNetns(`/var/run/netns/${get().underlay}`, () => s.listen(6443)));
  apiUrl = `http://${API_IP}:${port}`;
  const kubeconfig = path.join(lab.dir, 'podlegs.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigFor(apiUrl, api.token));
  for (const n of lab.nodes) api.put('nodes', { metadata: { name: n.name }, status: { addresses: [{ type: 'InternalIP', address: managementIp(n) }] } });
  api.put('network-attachment-definitions', { metadata: { name: 'vrrp-a', namespace: 'default' }, spec: { config: JSON.stringify(NAD_CONFIG) } });
  for (const n of lab.nodes) {
    // The node settings a delegate call reads (its stdin is only the NAD's config), and the agent's file.
    const settings = { underlay: { interface: 'ul0' }, registry: { type: 'kubernetes' }, kubernetes: { kubeconfig }, stateDir: path.join(n.dir, 'state'), agent: { socket: n.agentSocket } };
    fs.writeFileSync(nodeConfFile(n), JSON.stringify({ ...settings, log: { file: path.join(n.dir, 'podlegs.log'), level: 'debug' } }));
    const agentFile = path.join(n.dir, 'agent.json');
    fs.writeFileSync(agentFile, JSON.stringify({ ...settings, log: { level: 'info' } }));
    const a = lab.spawn(n.netns, [lab.podlegsBin, 'agent', '--config', agentFile], { env: { NODE_NAME: n.name } });
    agents.push(a);
    await a.waitFor('agent started', 15_000);
  }
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a.kill();
  await api?.stop();
  await destroyChecked(lab, root);
}, 120_000);

describe('podlegs as a Multus delegate on two nodes (Kubernetes mode)', () => {
  it('net1 gets the IP and MAC of runtimeConfig (the selection\'s ips/mac), with the NAD\'s static IPAM', async () => {
    const specs: [number, string, string, string][] = [[1, 'pa', '10.100.0.1/24', '0a:58:0a:64:00:01'], [2, 'pb', '10.100.0.2/24', '0a:58:0a:64:00:02']];
    for (const [i, name, ip, mac] of specs) await multusAdd(i, name, ip, mac);
    for (const [, name, ip, mac] of specs) {
      const p = pods.get(name)!;
      expect({ interfaces: p.net1.interfaces, ips: p.net1.ips }).toEqual({
        interfaces: [expect.objectContaining({ name: 'net1', mac, sandbox: p.pod.netns })], ips: [expect.objectContaining({ address: ip, interface: 0 })],
      });
      const [link] = JSON.parse((await get().sh('ip -j addr show dev net1', { netns: p.pod.nsName })).stdout) as Json[];
      expect({ mac: link.address, ips: link.addr_info.filter((a: Json) => a.family === 'inet').map((a: Json) => `${a.local}/${a.prefixlen}`) }).toEqual({ mac, ips: [ip] });
      // What the agents read: exactly what Multus wrote, eth0 first.
      const status = JSON.parse(api.get('pods', 'default', name)!.metadata.annotations[STATUS]) as Json[];
      expect(status.map((e) => [e.name, e.interface])).toEqual([['cilium', 'eth0'], ['default/vrrp-a', 'net1']]);
      expect(status[1]).toEqual({ name: 'default/vrrp-a', interface: 'net1', ips: [ip.split('/')[0]], mac, dns: {} });
      // libcni's CheckNetwork, as Multus runs it for a delegate: the cached ADD result as prevResult.
      must(`${name} CHECK net1`, await get().exec(p.pod.node, 'podlegs', {
        command: 'CHECK', pod: p.pod, ifname: 'net1', args: p.args, env: { PODLEGS_NODE_CONFIG: nodeConfFile(p.pod.node) },
        conf: { ...NAD_CONFIG, runtimeConfig: runtimeConfig(p.sel), prevResult: p.net1 },
      }));
    }
  });

  it('the agents follow Multus\'s network-status: each node floods to the other, with the remote MAC; the pods reach each other over net1', async () => {
    const [pa, pb] = [pods.get('pa')!, pods.get('pb')!];
    await expectFdb(1, [node(2).vtep], { [pb.sel.mac]: node(2).vtep });
    await expectFdb(2, [node(1).vtep], { [pa.sel.mac]: node(1).vtep });
    await get().sh('ping -c 2 -W 2 10.100.0.2', { netns: pa.pod.nsName });
    await get().sh('ping -c 2 -W 2 10.100.0.1', { netns: pb.pod.nsName });
    expect(await neighMac(get(), pa.pod, '10.100.0.2')).toBe(pb.sel.mac);
    // Multus posts AddedInterface for its delegates itself: the agents add none.
    expect(api.list('events').filter((e) => e.involvedObject?.namespace === 'default')).toEqual([]);
  });

  it('a third pod joining and one leaving are followed by the agents', async () => {
    const [pa, pb] = [pods.get('pa')!, pods.get('pb')!];
    const pc = await multusAdd(2, 'pc', '10.100.0.3/24', '0a:58:0a:64:00:03');
    await expectFdb(1, [node(2).vtep], { [pb.sel.mac]: node(2).vtep, [pc.sel.mac]: node(2).vtep });
    await get().sh('ping -c 2 -W 2 10.100.0.3', { netns: pa.pod.nsName });

    await multusDel('pb');
    await expectFdb(1, [node(2).vtep], { [pc.sel.mac]: node(2).vtep });
    await get().sh('ping -c 2 -W 2 10.100.0.3', { netns: pa.pod.nsName });

    // The last member on n2 leaves, its netns already gone (Multus then leaves network-status
    // alone): DEL still cleans up, and n1 no longer floods to n2 once the pod object is deleted.
    await multusDel('pc', { netnsGone: true });
    await expectFdb(1, [], {});
    // The agent's first reconcile may run before its watches have listed (it then leaves the kernel alone, and warns).
    for (const a of agents) expect(agentProblems(a).filter((l) => !/not synced yet/.test(l))).toEqual([]);
  });

  it('DEL of the last pod leaves no podlegs links on the nodes', async () => {
    await multusDel('pa');
    for (const n of get().nodes) {
      await waitUntil(`no podlegs links on ${n.name}`, async () => (await linkNames(get(), n.nsName)).every((l) => !l.startsWith('pl')), FOLLOW_MS);
    }
  });
});
