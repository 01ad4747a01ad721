// Trunk NAD edits in Kubernetes mode, through the agent (NAD watch → plan → host side →
// network-status and Events), on this machine's kernel: it has clsact and cls_bpf but no
// 8021q, so the running trunk is what ADD leaves on the host minus its VLAN sub-interfaces (the
// trunk veth with podlegs' filter, and the attachment state). What can be checked here is:
// a removed VLAN leaves the filter (swapped in place), the state and the pod's network-status;
// an added VLAN on this kernel is refused by the missing 8021q and rolled back (filter, state,
// segments as before); a VLAN on a forbidden namespace is refused without touching anything.
// The full edit with sub-interfaces and traffic runs in the VM suite (test/vm/trunk.test.ts).
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { Kernel } from '../../overlay/kernel/kernel';
import { describeTrunkFilter, trunkFilterProgram } from '../../overlay/trunk-filter';
import { hostVethName, trunkVlanName } from '../../overlay/names';
import { Lab, LabNode, LabPod, LabProcess, leakCheck } from './lab';
import { managementIp, waitUntil } from './nf';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const API_IP = '192.0.2.1';
jest.setTimeout(120_000);

let lab: Lab;
let api: FakeApiServer;
let node: LabNode;
let pod: LabPod;
let agent: LabProcess;
let k: Kernel;
let hostIf: string;
let stateFile: string;

const nad = (name: string, config: Json, ns = 'nf'): Json =>
  api.put('network-attachment-definitions', { metadata: { name, namespace: ns }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'podlegs', ...config }) } });
const trunkNad = (vlans: Json[]): Json => nad('trunk', { trunk: { vlans } });
const statusVlans = (): Json[] => {
  const ann = api.get('pods', 'nf', 'nf1')?.metadata.annotations?.['k8s.v1.cni.cncf.io/network-status'];
  return (JSON.parse(ann ?? '[]') as Json[]).find((e) => e.interface === 'net1')?.['podlegs.io/vlans'];
};
const stateVids = (): number[] => (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as Json).legs[0].trunk.vlans.map((v: Json) => v.vid);
const filterNow = async (): Promise<{ vids: number[]; native: boolean } | undefined> => {
  const f = await k.ingressBpf((await k.linkByName(hostIf))!.index);
  return f.length === 1 ? describeTrunkFilter(f[0].prog) : undefined;
};
const events = (): Json[] => api.list('events').filter((e) => e.involvedObject?.name === 'nf1');
const links = async (): Promise<string[]> => (JSON.parse((await lab.sh('ip -j link', { netns: node.nsName })).stdout) as Json[]).map((l) => l.ifname).sort();

beforeAll(async () => {
  lab = await Lab.create({ nodes: 1 });
  node = lab.nodes[0];
  await lab.sh(`ip addr add ${API_IP}/24 dev ulbr`, { netns: lab.underlay });
  api = new FakeApiServer();
  const port = await api.start((s) => inNetns(`/var/run/netns/${lab.underlay}`, () => s.listen(6443)));
  const kubeconfig = path.join(lab.dir, 'podlegs.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigFor(`http://${API_IP}:${port}`, api.token));
  api.put('nodes', { metadata: { name: node.name }, status: { addresses: [{ type: 'InternalIP', address: managementIp(node) }] } });
  nad('a', { vni: 100 });
  nad('b', { vni: 200 });
  nad('c', { vni: 400 });
  nad('x', { vni: 500 }, 'other');
  trunkNad([{ vid: 10, network: 'a' }, { vid: 20, network: 'b' }]);

  // The running trunk as ADD leaves it, minus the sub-interfaces this kernel cannot make.
  pod = await lab.addPod(node, 'nf1');
  k = Kernel.open(node.netns);
  hostIf = hostVethName(pod.containerId, 'eth0', 'net1');
  const host = await k.createVeth(hostIf, 'net1', pod.netns, { mtu: 1450 });
  await k.addClsact(host.index);
  await k.addIngressBpf(host.index, trunkFilterProgram([10, 20], false));
  const mac = (await lab.sh('cat /sys/class/net/net1/address', { netns: pod.nsName })).stdout.trim();
  const vlan = (vid: number, network: string, vni: number): Json => ({ vid, network, vni, hostIf: trunkVlanName(hostIf, vid), mtu: 1450 });
  const stateDir = path.join(node.dir, 'state');
  stateFile = path.join(stateDir, 'attachments', `${pod.containerId}_eth0.json`);
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  fs.writeFileSync(stateFile, JSON.stringify({
    version: 1, containerId: pod.containerId, ifname: 'eth0', netns: pod.netns, network: 'cilium', cniVersion: '1.0.0', vtep: '192.0.2.11',
    registry: { type: 'kubernetes' }, complete: true, pod: { namespace: 'nf', name: 'nf1' },
    legs: [{ network: 'nf/trunk', vni: 0, ifname: 'net1', hostIf, mtu: 1450, ips: [], mac, trunk: { vlans: [vlan(10, 'nf/a', 100), vlan(20, 'nf/b', 200)] } }],
  }));
  api.put('pods', {
    metadata: { name: 'nf1', namespace: 'nf', annotations: { 'k8s.v1.cni.cncf.io/network-status': JSON.stringify([
      { name: 'cilium', interface: 'eth0', ips: ['10.0.0.5'], default: true, dns: {} },
      { name: 'nf/trunk', interface: 'net1', ips: [], mac, mtu: 1450, dns: {}, 'podlegs.io/vlans': [{ vid: 10, vni: 100 }, { vid: 20, vni: 200 }] },
    ]) } },
    spec: { nodeName: node.name }, status: { phase: 'Running' },
  });

  const file = path.join(node.dir, 'agent.json');
  fs.writeFileSync(file, JSON.stringify({
    underlay: { interface: 'ul0' }, kubernetes: { kubeconfig }, registry: { type: 'kubernetes' }, stateDir,
    log: { level: 'info' }, agent: { socket: node.agentSocket, metricsAddress: '127.0.0.1:9750' },
  }));
  agent = lab.spawn(node.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: node.name, PODLEGS_RESYNC_MS: '2000' } });
  await agent.waitFor('agent started', 30_000);
}, 90_000);

afterAll(async () => {
  k?.close();
  await agent?.kill();
  await api?.stop();
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

describe('a trunk NAD edited while its pod runs (Kubernetes mode, agent)', () => {
  it('VLAN 20 removed: filter swapped in place, state and network-status say 10, an Event says so', async () => {
    expect(await filterNow()).toEqual({ vids: [10, 20], native: false }); // nothing changed at start: the NAD says 10, 20
    trunkNad([{ vid: 10, network: 'a' }]);
    await waitUntil('network-status of nf1 to list VLAN 10 only', () => JSON.stringify(statusVlans()) === JSON.stringify([{ vid: 10, vni: 100 }]), 30_000, 50);
    expect(stateVids()).toEqual([10]);
    expect(await filterNow()).toEqual({ vids: [10], native: false });
    await waitUntil('TrunkVlansChanged event', () => events().some((e) => e.reason === 'TrunkVlansChanged'), 30_000, 50);
    expect(events().map((e) => [e.reason, e.type, e.message])).toEqual([['TrunkVlansChanged', 'Normal', 'VLANs of trunk net1 (nf/trunk) now 10: removed 20 (podlegs)']]);
  });

  it('VLAN 30 added on a kernel without 8021q: refused by the kernel, rolled back, a Warning says why', async () => {
    trunkNad([{ vid: 10, network: 'a' }, { vid: 30, network: 'c' }]);
    await waitUntil('a warning event naming 8021q', () => events().some((e) => e.type === 'Warning' && /8021q/.test(e.message)), 30_000, 50);
    expect(stateVids()).toEqual([10]);
    expect(await filterNow()).toEqual({ vids: [10], native: false });
    expect(statusVlans()).toEqual([{ vid: 10, vni: 100 }]);
    expect((await links()).filter((l) => /^pl(br|vx)/.test(l))).toEqual([]); // segment 400 made for it is gone again
  });

  it('a VLAN on a namespace the pod may not use: refused before anything is touched, a Warning says why', async () => {
    const before = events().length;
    trunkNad([{ vid: 10, network: 'a' }, { vid: 40, network: 'other/x' }]);
    await waitUntil('a warning event naming the namespace', () => events().slice(before).some((e) => e.reason === 'TrunkVlansNotChanged' && /other\/x, a namespace this pod may not use/.test(e.message)), 30_000, 50);
    expect(stateVids()).toEqual([10]);
    expect(await filterNow()).toEqual({ vids: [10], native: false });
    expect((await links()).filter((l) => /^pl(br|vx)/.test(l))).toEqual([]);
  });
});
