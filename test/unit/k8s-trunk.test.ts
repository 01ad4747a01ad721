// Trunk NADs in Kubernetes mode: a trunk NAD names other NADs for its VLANs;
// resolution follows them (namespace rules included) and network-status carries
// the VLANs so other nodes' agents flood to this node for each of them.
import * as path from 'path';
import { FakeApiServer, loopbackFakeApi } from '../k8s/fake-apiserver';
import { KubeClient } from '../../overlay/kube/http';
import { readKubeconfig } from '../../overlay/kube/kubeconfig';
import { PodObject, resolveSelections } from '../../plugin/k8s/pod-legs';
import { buildNetworkStatus } from '../../plugin/k8s/network-status';
import { legsFromStatus } from '../../overlay/agent/k8s/network-status';
import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';

let api: FakeApiServer;
let client: KubeClient;
let dir: string;
const conf = () => loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'cilium', type: 'podlegs', kubernetes: { globalNamespaces: ['shared'] }, stateDir: path.join(dir, 'state') }));
const nad = (ns: string, name: string, config: object) => api.put('network-attachment-definitions', { metadata: { name, namespace: ns }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'podlegs', ...config }) } });
const pod = (networks: unknown): PodObject => ({ metadata: { name: 'nf1', namespace: 'nf', annotations: { 'k8s.v1.cni.cncf.io/networks': JSON.stringify(networks) } }, spec: { nodeName: 'n1' } });

let stopApi: () => Promise<void>;
beforeEach(async () => {
  const f = await loopbackFakeApi();
  ({ api, dir } = f);
  stopApi = f.stop;
  client = new KubeClient(readKubeconfig(f.kubeconfig));
  nad('nf', 'vrrp-a', { vni: 100 });
  nad('shared', 'nf-b', { vni: 200 });
  nad('nf', 'mgmt', { vni: 300 });
  nad('nf', 'trunk', { trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 20, network: 'shared/nf-b' }], nativeNetwork: 'mgmt' } });
});
afterEach(() => stopApi());

it('resolves a trunk NAD and the NADs its VLANs name', async () => {
  const r = await resolveSelections(conf(), client, pod([{ name: 'trunk', interface: 'net1' }]));
  expect(r.legs).toEqual([{ network: 'nf/trunk', interface: 'net1', trunk: true }]);
  expect(r.trunks.get('nf/trunk')).toEqual({ name: 'nf/trunk', vlans: [{ vid: 10, network: 'nf/vrrp-a' }, { vid: 20, network: 'shared/nf-b' }], nativeNetwork: 'nf/mgmt' });
  expect([...r.networks.keys()].sort()).toEqual(['nf/mgmt', 'nf/vrrp-a', 'shared/nf-b']);
});

it.each<[string, unknown, RegExp]>([
  ['a VLAN in a namespace the pod may not use', { trunk: { vlans: [{ vid: 10, network: 'other/x' }] } }, /namespace this pod may not use/],
  ['a trunk of trunks', { trunk: { vlans: [{ vid: 10, network: 'trunk' }] } }, /itself a trunk/],
])('refuses %s', async (_what, cfg, msg) => {
  nad('other', 'x', { vni: 400 });
  nad('nf', 't2', cfg as object);
  const err = await resolveSelections(conf(), client, pod([{ name: 't2' }])).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CniError);
  expect((err as CniError).message).toMatch(msg);
});

it('refuses a network on both the trunk and an access leg', async () => {
  const err = await resolveSelections(conf(), client, pod([{ name: 'trunk', interface: 'net1' }, { name: 'vrrp-a', interface: 'net2' }])).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CniError);
});

it('network-status carries the VLANs, and members come back for each', () => {
  const status = buildNetworkStatus('cilium', undefined, [{ network: 'nf/trunk', ifname: 'net1', mac: '02:00:00:00:00:09', mtu: 1450, ips: [], vni: 300, vlans: [{ vid: 10, vni: 100 }, { vid: 20, vni: 200 }] }]);
  expect(status[0]).toMatchObject({ 'podlegs.io/vni': 300, 'podlegs.io/vlans': [{ vid: 10, vni: 100 }, { vid: 20, vni: 200 }] });
  expect(legsFromStatus(JSON.stringify(status)).map((l) => [l.ifname, l.vni])).toEqual([['net1', 300], ['net1.10', 100], ['net1.20', 200]]);
});
