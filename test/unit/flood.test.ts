import { planFdb, SegmentState } from '../../overlay/agent/reconciler';
import { desiredState } from '../../overlay/agent/desired';
import { ZERO_MAC } from '../../overlay/kernel/kernel';
import { Member } from '../../overlay/registry/member';
import { parseMember } from '../../overlay/registry/member';

const m = (vni: number, vtep: string, n: number): Member => ({ vni, vtep, mac: `02:00:00:00:00:${String(n).padStart(2, '0')}`, owner: `c${n}/eth0/net1` });

// One desired-state rule for ADD (no agent) and the agent alike.
describe('desiredState flood lists', () => {
  const members = [m(100, '192.0.2.11', 1), m(100, '192.0.2.12', 2), m(100, '192.0.2.12', 3), m(200, '192.0.2.13', 4), m(300, '192.0.2.14', 5)];
  it('lists each remote VTEP with a member once, never itself, only for local VNIs', () => {
    const d = desiredState(members, '192.0.2.11', [100, 200]).segments;
    expect([...d.keys()]).toEqual([100, 200]);
    expect([...d.get(100)!.flood]).toEqual(['192.0.2.12']);
    expect([...d.get(200)!.flood]).toEqual(['192.0.2.13']);
  });
  it('gives an empty list to a VNI nobody else has', () => {
    expect(desiredState(members, '192.0.2.11', [400]).segments.get(400)!.flood.size).toBe(0);
  });
});

// The agent's path: desiredState from membership, planFdb against what the kernel holds.
describe('reconciler flood plan (desiredState + planFdb)', () => {
  const seg = (vni: number, vxlanIndex: number, flood: string[], macs: [string, string][] = []): SegmentState =>
    ({ vni, vxlanIndex, legs: ['pl0'], flood: new Set(flood), macs: new Map(macs.map(([mac, dst]) => [mac, new Set([dst])])) });
  const planFor = (actual: Map<number, SegmentState>, members: Member[], local: string) =>
    planFdb(actual, desiredState(members, local, actual.keys()).segments);
  it('adds what is missing and removes what is stale, nothing else', () => {
    const actual = new Map([[100, seg(100, 7, ['192.0.2.12', '192.0.2.99'])], [200, seg(200, 8, [])]]);
    const ops = planFor(actual, [m(100, '192.0.2.12', 1), m(200, '192.0.2.13', 2), m(200, '192.0.2.11', 3)], '192.0.2.11');
    expect(ops.filter((o) => o.mac === ZERO_MAC).sort((a, b) => a.vni - b.vni)).toEqual([
      { op: 'del', vni: 100, vxlanIndex: 7, mac: ZERO_MAC, dst: '192.0.2.99' },
      { op: 'add', vni: 200, vxlanIndex: 8, mac: ZERO_MAC, dst: '192.0.2.13' },
    ]);
  });
  it('is empty when actual equals desired', () => {
    const a = m(100, '192.0.2.12', 1), b = m(100, '192.0.2.99', 2);
    const actual = new Map([[100, seg(100, 7, ['192.0.2.12', '192.0.2.99'], [[a.mac, a.vtep], [b.mac, b.vtep]])]]);
    expect(planFor(actual, [a, b], '192.0.2.11')).toEqual([]);
  });
});

describe('parseMember', () => {
  it.each<[unknown, string]>([
    [null, 'not an object'], [{ vni: 0 }, 'vni'], [{ vni: 1, vtep: 'x' }, 'vtep'], [{ vni: 1, vtep: '224.0.0.1' }, 'unicast'],
    [{ vni: 1, vtep: '192.0.2.1', mac: 'zz' }, 'mac'], [{ vni: 1, vtep: '192.0.2.1', mac: '02:00:00:00:00:01' }, 'owner'],
  ])('rejects %p', (raw, why) => expect(parseMember(raw)).toContain(why));
  it('accepts a good entry', () => expect(parseMember(m(5, '198.51.100.7', 1))).toEqual(m(5, '198.51.100.7', 1)));
});
