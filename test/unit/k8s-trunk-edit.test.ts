// Trunk VLAN edits in Kubernetes mode, against the fake API: the edited trunk NAD resolved from
// the agent's NAD cache with ADD's rules, the plan for a running leg, the pod's network-status
// rewritten (through a conflicting write) so other nodes' membership follows, and the Events.
import { FakeApiServer, loopbackFakeApi } from '../k8s/fake-apiserver';
import { KubeClient } from '../../overlay/kube/http';
import { readKubeconfig } from '../../overlay/kube/kubeconfig';
import { nadTrunkLookup, publishEdits, publishTrunkVlans } from '../../plugin/k8s/trunk-nads';
import { legsFromStatus, NETWORK_STATUS_ANNOTATION } from '../../overlay/agent/k8s/network-status';
import { EditOutcome, planTrunkEdits } from '../../plugin/cni/trunk-edit';
import type { NadObject } from '../../plugin/k8s/nad';
import { mtuLimit } from '../../overlay/underlay';
import type { AttachmentState, LegState } from '../../plugin/cni/state';

let api: FakeApiServer;
let client: KubeClient;
let stopApi: () => Promise<void>;
const limit = mtuLimit(1500, 4);
const nad = (ns: string, name: string, config: object): NadObject =>
  ({ metadata: { name, namespace: ns }, spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'podlegs', ...config }) } });
const base = (): NadObject[] => [nad('nf', 'vrrp-a', { vni: 100 }), nad('shared', 'nf-b', { vni: 200 }), nad('nf', 'c', { vni: 400 }), nad('other', 'x', { vni: 500 })];
const trunkNad = (vlans: object[]): NadObject => nad('nf', 'trunk', { trunk: { vlans } });

const leg = (): LegState => ({
  network: 'nf/trunk', vni: 0, ifname: 'net1', hostIf: 'pl0123456789ab', mtu: 1450, ips: [], mac: '02:00:00:00:00:09',
  trunk: { vlans: [
    { vid: 10, network: 'nf/vrrp-a', vni: 100, hostIf: 'pl01234567v10', mtu: 1450 },
    { vid: 20, network: 'shared/nf-b', vni: 200, hostIf: 'pl01234567v20', mtu: 1450 },
  ] },
});
const state = (l: LegState = leg()): AttachmentState => ({
  containerId: 'c0ffee', ifname: 'eth0', netns: '/run/netns/x', network: 'cilium', cniVersion: '1.0.0', vtep: '192.0.2.11',
  registry: { type: 'kubernetes' }, legs: [l], complete: true, pod: { namespace: 'nf', name: 'nf1' },
});
const k8s = { globalNamespaces: ['shared'] };

beforeEach(async () => {
  const f = await loopbackFakeApi();
  api = f.api;
  stopApi = f.stop;
  client = new KubeClient(readKubeconfig(f.kubeconfig));
});
afterEach(() => stopApi());

describe('the edited trunk NAD, resolved from the NAD cache', () => {
  it('VLAN 30 (nf/c) added, VLAN 20 (shared/nf-b) removed', async () => {
    const out = await planTrunkEdits([state()], nadTrunkLookup([...base(), trunkNad([{ vid: 10, network: 'vrrp-a' }, { vid: 30, network: 'c' }])], k8s), limit);
    expect(out).toHaveLength(1);
    const p = 'plan' in out[0] ? out[0].plan : undefined;
    expect(p?.add.map((v) => [v.vid, v.network, v.vni])).toEqual([[30, 'nf/c', 400]]);
    expect(p?.remove.map((v) => v.vid)).toEqual([20]);
  });

  it.each<[string, object[], RegExp]>([
    ['a VLAN in a namespace the pod may not use', [{ vid: 10, network: 'vrrp-a' }, { vid: 30, network: 'other/x' }], /other\/x, a namespace this pod may not use/],
    ['a VLAN naming a NAD that does not exist', [{ vid: 10, network: 'vrrp-a' }, { vid: 30, network: 'gone' }], /NetworkAttachmentDefinition nf\/gone does not exist/],
    ['a VLAN listed twice', [{ vid: 10, network: 'vrrp-a' }, { vid: 10, network: 'c' }], /VLAN 10 is listed twice/],
  ])('refuses %s; the leg keeps its VLANs', async (_what, vlans, re) => {
    const out = await planTrunkEdits([state()], nadTrunkLookup([...base(), trunkNad(vlans)], k8s), limit);
    expect(out.map((o) => ('refused' in o ? o.refused.message : 'planned'))).toEqual([expect.stringMatching(re)]);
  });

  it('a deleted trunk NAD, or a static network name, is no edit', async () => {
    expect(await planTrunkEdits([state()], nadTrunkLookup(base(), k8s), limit)).toEqual([]);
    const staticLeg = { ...leg(), network: 'trunk' };
    expect(await planTrunkEdits([state(staticLeg)], nadTrunkLookup([...base(), trunkNad([{ vid: 30, network: 'c' }])], k8s), limit)).toEqual([]);
  });
});

describe('network-status and Events after an edit', () => {
  const podWith = (entry: object): void => {
    api.put('pods', { metadata: { name: 'nf1', namespace: 'nf', annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify([
      { name: 'cilium', interface: 'eth0', ips: ['10.0.0.5'], default: true, dns: {} }, entry,
    ]) } }, spec: { nodeName: 'n1' } });
  };
  const edited = (): LegState => {
    const l = leg();
    l.trunk!.vlans = [l.trunk!.vlans[0], { vid: 30, network: 'nf/c', vni: 400, hostIf: 'pl01234567v30', mtu: 1450 }];
    return l;
  };

  it('the trunk entry gets the new VLANs through a conflicting write; other nodes\' members follow', async () => {
    podWith({ name: 'nf/trunk', interface: 'net1', mac: '02:00:00:00:00:09', ips: [], mtu: 1450, dns: {}, 'podlegs.io/vlans': [{ vid: 10, vni: 100 }, { vid: 20, vni: 200 }] });
    api.faults.push({ status: 409, times: 1, match: /^PATCH \/api\/v1\/namespaces\/nf\/pods\/nf1$/ });
    const l = edited();
    expect(await publishTrunkVlans(client, state(l), l)).toBe(true);
    expect(api.calls.filter((c) => c.method === 'PATCH')).toHaveLength(2);
    const ann = (api.get('pods', 'nf', 'nf1') as { metadata: { annotations: Record<string, string> } }).metadata.annotations[NETWORK_STATUS_ANNOTATION];
    expect(JSON.parse(ann)[0]).toMatchObject({ name: 'cilium', default: true });
    expect(legsFromStatus(ann).map((m) => [m.ifname, m.vni])).toEqual([['net1.10', 100], ['net1.30', 400]]);
  });

  it('an entry Multus wrote (no podlegs VLAN key) is left alone: agents read that trunk\'s VLANs from the NAD', async () => {
    podWith({ name: 'nf/trunk', interface: 'net1', mac: '02:00:00:00:00:09', ips: [], dns: {} });
    const l = edited();
    expect(await publishTrunkVlans(client, state(l), l)).toBe(false);
    expect(api.calls.filter((c) => c.method === 'PATCH')).toEqual([]);
  });

  it('an Event says what changed, a Warning why not', async () => {
    podWith({ name: 'nf/trunk', interface: 'net1', mac: '02:00:00:00:00:09', ips: [], dns: {}, 'podlegs.io/vlans': [{ vid: 10, vni: 100 }, { vid: 20, vni: 200 }] });
    const ok = (await planTrunkEdits([state()], nadTrunkLookup([...base(), trunkNad([{ vid: 10, network: 'vrrp-a' }, { vid: 30, network: 'c' }])], k8s), limit))[0];
    const no = (await planTrunkEdits([state()], nadTrunkLookup([...base(), trunkNad([{ vid: 30, network: 'other/x' }])], k8s), limit))[0];
    const warnings: string[] = [];
    const outcomes = [ok, no].map((e): EditOutcome => ('plan' in e ? { ...e, ms: 1 } : e));
    await publishEdits(client, outcomes, { host: 'n1', uidOf: () => 'uid-1', log: { warn: (m) => warnings.push(m) } });
    expect(warnings).toEqual([]);
    const events = api.list('events') as { reason: string; type: string; message: string; involvedObject: { uid?: string } }[];
    expect(events.map((e) => [e.reason, e.type, e.involvedObject.uid])).toEqual([['TrunkVlansChanged', 'Normal', 'uid-1'], ['TrunkVlansNotChanged', 'Warning', 'uid-1']]);
    expect(events[0].message).toBe('VLANs of trunk net1 (nf/trunk) now 10,30: added 30; removed 20 (podlegs)');
    expect(events[1].message).toMatch(/a namespace this pod may not use/);
  });
});
