// Hot-plug's pure rules: which annotation elements are attached already, which are new (next
// free netN), which recorded legs are unplugged; network-status merging; the NAD-edit rule; and
// which recorded attachment a pod may be hot-plugged into (a real netns file: /proc/self/ns/net).
import { nextFreeIfname, planHotPlug, toElement } from '../../plugin/hotplug/plan';
import { mergeStatus, STALE_KEY } from '../../plugin/hotplug/status';
import { staleReasons } from '../../plugin/hotplug/nad-edits';
import { currentAttachment } from '../../plugin/hotplug/sandbox';
import { parseSelections } from '../../plugin/k8s/selection';
import { netnsId } from '../../overlay/kernel/netns';
import type { AttachmentState, LegState } from '../../plugin/cni/state';

const leg = (network: string, ifname: string, extra: Partial<LegState> = {}): LegState => ({ network, vni: 100, ifname, hostIf: `pl${ifname}`, mtu: 1450, ips: [], ...extra });
const limit = { max: 1450, why: 'underlay MTU 1500 - 50' };

describe('planHotPlug', () => {
  const legs = [leg('nf/nf-a', 'net1'), leg('nf/nf-b', 'net2')];
  it('keeps elements that match recorded legs, by network and (when named) interface', () => {
    const p = planHotPlug(parseSelections('nf-a@net1,nf-b'), legs, 'nf', ['lo', 'eth0', 'net1', 'net2']);
    expect(p.keep.map((k) => k.leg.ifname)).toEqual(['net1', 'net2']);
    expect(p).toMatchObject({ add: [], remove: [] });
  });
  it('a new element without interface gets the next free netN (not a name in the pod, a leg or another element)', () => {
    const p = planHotPlug(parseSelections('nf-a@net1,nf-b@net2,nf-c,nf-d@net3'), legs, 'nf', ['lo', 'eth0', 'net1', 'net2', 'net4']);
    expect(p.add).toEqual([{ name: 'nf-c', interface: 'net5' }, { name: 'nf-d', interface: 'net3' }]);
  });
  it('an element removed unplugs its leg, identified by what was recorded (no interface needed)', () => {
    const p = planHotPlug(parseSelections('nf-b'), legs, 'nf', []);
    expect(p.remove.map((l) => l.ifname)).toEqual(['net1']);
    expect(p.keep.map((k) => k.leg.ifname)).toEqual(['net2']);
  });
  it('an element naming another interface for a recorded network: the old leg goes, the new one comes', () => {
    const p = planHotPlug(parseSelections('nf-a@net7,nf-b@net2'), legs, 'nf', []);
    expect(p.remove.map((l) => l.ifname)).toEqual(['net1']);
    expect(p.add).toEqual([{ name: 'nf-a', interface: 'net7' }]);
  });
  it('the namespace is part of the identity: other/nf-a is not nf/nf-a', () => {
    const p = planHotPlug(parseSelections('other/nf-a@net1,nf-b@net2'), legs, 'nf', []);
    expect(p.remove.map((l) => l.ifname)).toEqual(['net1']);
    expect(p.add).toEqual([{ name: 'nf-a', namespace: 'other', interface: 'net1' }]);
  });
  it('nextFreeIfname and toElement', () => {
    expect(nextFreeIfname(new Set(['net1', 'net3']))).toBe('net2');
    expect(parseSelections(JSON.stringify([toElement({ name: 'a', namespace: 'x', interface: 'net1', ips: ['192.0.2.1/24'], mac: '02:00:00:00:00:01', cniArgs: { k: 1 } })])))
      .toEqual([{ name: 'a', namespace: 'x', interface: 'net1', ips: ['192.0.2.1/24'], mac: '02:00:00:00:00:01', cniArgs: { k: 1 } }]);
  });
});

describe('mergeStatus', () => {
  const eth0 = { name: 'cilium', interface: 'eth0', ips: ['10.0.0.5'], default: true, dns: {} };
  const foreign = { name: 'nf/mv', interface: 'net9', ips: [], dns: {} }; // Multus wrote it
  it('keeps entries podlegs did not write, in place; rebuilds its own from the recorded legs; pending legs are not listed', () => {
    const old = [eth0, foreign, { name: 'nf/nf-a', interface: 'net1', 'podlegs.io/vni': 100, dns: {} }];
    const out = mergeStatus(old, [leg('nf/nf-b', 'net2', { vni: 200, mac: '02:00:00:00:00:02', ips: ['10.200.0.3/24'] }), leg('nf/nf-c', 'net3', { pending: true })], new Map());
    expect(out).toEqual([eth0, foreign, { name: 'nf/nf-b', interface: 'net2', ips: ['10.200.0.3'], mac: '02:00:00:00:00:02', mtu: 1450, dns: {}, 'podlegs.io/vni': 200 }]);
  });
  it('a stale leg carries the reason', () => {
    const out = mergeStatus([eth0], [leg('nf/nf-a', 'net1', { mac: '02:00:00:00:00:01' })], new Map([['net1', 'changed']]));
    expect(out[1][STALE_KEY]).toBe('changed');
  });
});

describe('the NAD-edit rule (staleReasons)', () => {
  const l = leg('nf/nf-a', 'net1', { ipam: { type: 'host-local', subnet: '10.1.0.0/24' } });
  it('nothing when the NAD still says what the leg has', () => {
    expect(staleReasons(l, { name: 'nf/nf-a', vni: 100, ipam: { subnet: '10.1.0.0/24', type: 'host-local' } }, undefined, limit)).toEqual([]);
  });
  it('VNI, MTU and IPAM changes are named', () => {
    expect(staleReasons(l, { name: 'nf/nf-a', vni: 101, mtu: 1300, ipam: { type: 'static' } }, undefined, limit)).toEqual(['vni 100 → 101', 'mtu 1450 → 1300', 'ipam changed']);
  });
  it('IPAM does not matter for a leg whose element gives its ips', () => {
    expect(staleReasons(leg('nf/nf-a', 'net1'), { name: 'nf/nf-a', vni: 100, ipam: { type: 'static' } }, ['10.1.0.1/24'], limit)).toEqual([]);
  });
  it('trunk legs are left to the trunk-edit code', () => {
    expect(staleReasons(leg('nf/t', 'net1', { trunk: { vlans: [] } }), { name: 'nf/t', vni: 5 }, undefined, limit)).toEqual([]);
  });
});

describe('currentAttachment (which sandbox a hot-plug may touch)', () => {
  const netns = '/proc/self/ns/net';
  const state = (extra: Partial<AttachmentState> = {}): AttachmentState => ({
    containerId: 'c1', ifname: 'eth0', netns, network: 'cilium', cniVersion: '1.0.0', vtep: '192.0.2.11', registry: { type: 'kubernetes' },
    legs: [], complete: true, pod: { uid: 'u1' }, sandbox: { netnsId: netnsId(netns)!, cniPath: [], cniArgs: '' }, ...extra,
  });
  const pod = (sandbox?: string, uid = 'u1'): Parameters<typeof currentAttachment>[0] => ({ metadata: { name: 'p', namespace: 'nf', uid, annotations: sandbox ? { 'podlegs.io/sandbox': sandbox } : {} } });
  it('the attachment the pod\'s last ADD published, of this pod object, in the netns ADD saw', () => {
    expect(currentAttachment(pod('c1'), [state()])).toEqual({ state: state() });
  });
  it('nothing for a pod without the annotation, another sandbox, or an ADD still running', () => {
    expect(currentAttachment(pod(), [state()])).toBeUndefined();
    expect(currentAttachment(pod('c2'), [state()])).toBeUndefined();
    expect(currentAttachment(pod('c1'), [state({ complete: false })])).toBeUndefined();
  });
  it('refused: an earlier pod object, a netns path that now names another namespace or is gone, no netns identity recorded', () => {
    expect(currentAttachment(pod('c1', 'u2'), [state()])).toEqual({ problem: expect.stringMatching(/earlier pod object/) });
    expect(currentAttachment(pod('c1'), [state({ sandbox: { netnsId: '1:2', cniPath: [], cniArgs: '' } })])).toEqual({ problem: expect.stringMatching(/is now another namespace/) });
    expect(currentAttachment(pod('c1'), [state({ netns: '/nonexistent/ns' })])).toEqual({ problem: expect.stringMatching(/is gone/) });
    expect(currentAttachment(pod('c1'), [state({ sandbox: undefined })])).toEqual({ problem: expect.stringMatching(/did not record its netns identity/) });
  });
});
