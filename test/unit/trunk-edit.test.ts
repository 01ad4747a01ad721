// Trunk VLAN edits, planned: a trunk network's new VLAN list (from a reloaded static config)
// against what a running trunk leg has (its attachment state) → what is added, removed,
// moved to another segment, and the refusals that leave the leg as it is.
import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';
import { planTrunkLeg } from '../../plugin/cni/trunk';
import { editChanges, planTrunkEdit, planTrunkEdits, staticTrunkLookup, TrunkEditPlan } from '../../plugin/cni/trunk-edit';
import { mtuLimit } from '../../overlay/underlay';
import type { AttachmentState, LegState } from '../../plugin/cni/state';
import type { CniEnv } from '../../plugin/cni/env';

type Obj = Record<string, unknown>;
const limit = mtuLimit(1500, 4);
const nets: Obj = {
  a: { vni: 100 }, b: { vni: 200 }, c: { vni: 400, mtu: 1400 }, m: { vni: 300 }, acc: { vni: 500 },
  big: { vni: 600, mtu: 1480 }, twin: { vni: 100 },
};
const conf = (vlans: Obj[], extra: Obj = {}, more: Obj = {}): ReturnType<typeof loadConf> => {
  const { twin: _t, ...networks } = nets; // "twin" (VNI 100 again) only where a test asks for it
  return loadConf(JSON.stringify({
    cniVersion: '1.1.0', name: 'nf', type: 'podlegs',
    networks: { ...networks, ...more, tr: { trunk: { vlans, ...extra } } },
  }));
};
const env = { containerId: 'c0ffee', ifname: 'eth0', args: new Map() } as unknown as CniEnv;

/** A running trunk leg as ADD records it, from the config it was attached with. */
function runningLeg(vlans: Obj[], extra: Obj = {}): LegState {
  const c = conf(vlans, extra);
  return planTrunkLeg(c, env, { network: 'tr', interface: 'net1', trunk: true }, limit);
}
const accessLeg: LegState = { network: 'acc', vni: 500, ifname: 'net2', hostIf: 'pl000000000002', mtu: 1450, ips: [] };
const plan = (leg: LegState, vlans: Obj[], extra: Obj = {}, others: LegState[] = [], more: Obj = {}): TrunkEditPlan =>
  planTrunkEdit(leg, others, staticTrunkLookup(conf(vlans, extra, more))('tr')!, limit);
const refusal = (f: () => unknown): string => {
  try { f(); } catch (e) { if (e instanceof CniError) return `${e.code} ${e.message}`; throw e; }
  throw new Error('not refused');
};
const vids = (xs: { vid: number }[]): number[] => xs.map((x) => x.vid);

const v10 = { vid: 10, network: 'a' };
const v20 = { vid: 20, network: 'b' };
const v30 = { vid: 30, network: 'c' };

describe('planTrunkEdit: old and new VLAN lists', () => {
  it('adds VLAN 30 and removes VLAN 20; VLAN 10 is kept as it runs', () => {
    const leg = runningLeg([v10, v20], { nativeNetwork: 'm' });
    const p = plan(leg, [v10, v30], { nativeNetwork: 'm' });
    expect(vids(p.add)).toEqual([30]);
    expect(vids(p.remove)).toEqual([20]);
    expect(p.retarget).toEqual([]);
    expect(p.notLive).toEqual([]);
    expect(p.vlans[0]).toBe(leg.trunk!.vlans[0]); // unchanged entry, same state object
    // The new VLAN's host side follows the ADD's naming, its MTU min(network, trunk).
    expect(p.add[0]).toEqual({ vid: 30, network: 'c', vni: 400, hostIf: `pl${leg.hostIf.slice(2, 10)}v30`, mtu: 1400 });
    expect(p.remove[0]).toBe(leg.trunk!.vlans[1]);
  });

  it('the same list (in another order) changes nothing', () => {
    const leg = runningLeg([v10, v20]);
    const p = plan(leg, [v20, v10]);
    expect(editChanges(p)).toBe(0);
    expect(vids(p.vlans)).toEqual([20, 10]);
  });

  it('a VID that now names another network moves its sub-interface to that segment', () => {
    const leg = runningLeg([v10, v20]);
    const p = plan(leg, [v10, { vid: 20, network: 'c' }]);
    expect([p.add, p.remove]).toEqual([[], []]);
    expect(p.retarget.map((r) => [r.from.vni, r.to.vni, r.to.hostIf === r.from.hostIf, r.to.mtu])).toEqual([[200, 400, true, 1400]]);
  });

  it('a VNI edit of a VLAN\'s network is no VLAN-list edit: the VLAN keeps its segment, reported', () => {
    const leg = runningLeg([v10, v20]);
    const p = planTrunkEdit(leg, [], { trunk: { name: 'tr', vlans: [v10, v20] }, networks: new Map([['a', { name: 'a', vni: 100 }], ['b', { name: 'b', vni: 201 }]]) }, limit);
    expect(editChanges(p)).toBe(0);
    expect(p.vlans).toEqual(leg.trunk!.vlans);
    expect(p.notLive).toEqual(['VLAN 20: network b VNI 200 → 201']);
  });

  it('replacing every VLAN: all old ones removed, all new ones added', () => {
    const leg = runningLeg([v10]);
    const p = plan(leg, [v20, v30]);
    expect([vids(p.add), vids(p.remove), vids(p.vlans)]).toEqual([[20, 30], [10], [20, 30]]);
  });

  it('a native network change is not applied live: reported, VLANs still planned', () => {
    const leg = runningLeg([v10], { nativeNetwork: 'm' });
    const p = plan(leg, [v10, v20]);
    expect(p.notLive).toEqual(['nativeNetwork m → none']);
    expect(vids(p.add)).toEqual([20]);
  });
});

describe('planTrunkEdit: refusals leave the leg as it is', () => {
  it.each<[string, () => TrunkEditPlan, RegExp]>([
    ['a new VLAN on a network the pod has as an access leg',
      () => plan(runningLeg([v10]), [v10, { vid: 50, network: 'acc' }], {}, [accessLeg]), /network "acc" is attached twice/],
    ['a new VLAN on the trunk\'s own native network (the pod keeps its native one)',
      () => plan(runningLeg([v10], { nativeNetwork: 'm' }), [v10, { vid: 30, network: 'm' }]), /network "m" is attached twice/],
    ['a new VLAN whose VNI another leg of the pod uses (two NADs claiming one VNI)',
      () => planTrunkEdit(runningLeg([v10]), [accessLeg], {
        trunk: { name: 'tr', vlans: [v10, { vid: 60, network: 'twin' }] },
        networks: new Map([['a', { name: 'a', vni: 100 }], ['twin', { name: 'twin', vni: 500 }]]),
      }, limit), /networks acc and twin both use VNI 500/],
    ['a new VLAN whose network asks for more MTU than the underlay carries',
      () => plan(runningLeg([v10]), [v10, { vid: 70, network: 'big' }]), /asks for MTU 1480, but the underlay allows at most 1450/],
  ])('%s', (_what, f, re) => {
    const msg = refusal(f);
    expect(msg).toMatch(/^7 the new VLAN list of trunk net1 \(network tr\) cannot be applied: /);
    expect(msg).toMatch(re);
    expect(msg).toMatch(/the leg keeps VLANs 10$/);
  });

  it('a VLAN whose network is not defined (a NAD deleted)', () => {
    const leg = runningLeg([v10]);
    expect(refusal(() => planTrunkEdit(leg, [], { trunk: { name: 'tr', vlans: [v10, { vid: 80, network: 'gone' }] }, networks: new Map([['a', { name: 'a', vni: 100 }]]) }, limit)))
      .toMatch(/VLAN 80: network gone is not defined/);
  });

  it('the new list itself is validated when the config is read (one validator): duplicates, range, size', () => {
    for (const [vlans, re] of [
      [[v10, { vid: 10, network: 'b' }], /VLAN 10 is listed twice/],
      [[v10, { vid: 11, network: 'a' }], /bridge two VLANs/],
      [[{ vid: 4095, network: 'a' }], /1 to 4094/],
      [[], /non-empty list/],
    ] as [Obj[], RegExp][]) expect(refusal(() => conf(vlans))).toMatch(re);
  });
});

describe('planTrunkEdits: every running trunk leg of a changed network', () => {
  const state = (id: string, legs: LegState[], complete = true): AttachmentState => ({
    containerId: id, ifname: 'eth0', netns: `/run/netns/${id}`, network: 'nf', cniVersion: '1.1.0', vtep: '192.0.2.11',
    registry: { type: 'file', path: '/x' }, legs, complete,
  });

  it('plans changed legs, skips equal ones, ADDs in flight, other networks and Kubernetes NAD keys', async () => {
    const changed = state('c1', [runningLeg([v10, v20])]);
    const equal = state('c2', [runningLeg([v10, v30])]);
    const inFlight = state('c3', [runningLeg([v10, v20])], false);
    const k8s = state('c4', [{ ...runningLeg([v10, v20]), network: 'nf/tr' }]);
    const access = state('c5', [accessLeg]);
    const out = await planTrunkEdits([changed, equal, inFlight, k8s, access], staticTrunkLookup(conf([v10, v30])), limit);
    expect(out.map((e) => [e.state.containerId, 'plan' in e ? [vids(e.plan.add), vids(e.plan.remove)] : 'refused'])).toEqual([['c1', [[30], [20]]]]);
  });

  it('a refusal for one pod does not stop the others', async () => {
    const clash = state('c1', [runningLeg([v10]), { ...accessLeg, network: 'c', vni: 400 }]);
    const fine = state('c2', [runningLeg([v10])]);
    const out = await planTrunkEdits([clash, fine], staticTrunkLookup(conf([v10, v30])), limit);
    expect(out.map((e) => [e.state.containerId, 'refused' in e ? e.refused.message.match(/network "c" is attached twice/)?.[0] : vids(e.plan.add)]))
      .toEqual([['c1', 'network "c" is attached twice'], ['c2', [30]]]);
  });
});

describe('a trunk whose native network asks for the leg guard', () => {
  const guarded = { m: { vni: 300, security: { mode: 'enforce' } } };
  it('is refused at planning (before any kernel change), naming the network and the way out', () => {
    expect(refusal(() => planTrunkLeg(conf([v10], { nativeNetwork: 'm' }, guarded), env, { network: 'tr', interface: 'net1', trunk: true }, limit)))
      .toMatch(/^7 leg net1: the native network m of trunk network tr has security mode "enforce".*"mode": "off"/);
  });
  it('is planned when the guard is off for the native network', () => {
    expect(planTrunkLeg(conf([v10], { nativeNetwork: 'm' }), env, { network: 'tr', interface: 'net1', trunk: true }, limit).trunk?.native).toEqual({ network: 'm', vni: 300 });
  });
});
