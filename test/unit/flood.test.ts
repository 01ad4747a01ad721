import { desiredFlood } from '../../overlay/flood';
import { plan, ActualSegment } from '../../overlay/agent/reconciler';
import { Member } from '../../overlay/registry/member';
import { parseMember } from '../../overlay/registry/member';

const m = (vni: number, vtep: string, n: number): Member => ({ vni, vtep, mac: `02:00:00:00:00:${String(n).padStart(2, '0')}`, owner: `c${n}/eth0/net1` });

describe('desiredFlood', () => {
  const members = [m(100, '192.0.2.11', 1), m(100, '192.0.2.12', 2), m(100, '192.0.2.12', 3), m(200, '192.0.2.13', 4), m(300, '192.0.2.14', 5)];
  it('lists each remote VTEP with a member once, never itself, only for local VNIs', () => {
    const d = desiredFlood(members, '192.0.2.11', [100, 200]);
    expect([...d.keys()]).toEqual([100, 200]);
    expect([...d.get(100)!]).toEqual(['192.0.2.12']);
    expect([...d.get(200)!]).toEqual(['192.0.2.13']);
  });
  it('gives an empty list to a VNI nobody else has', () => {
    expect(desiredFlood(members, '192.0.2.11', [400]).get(400)!.size).toBe(0);
  });
});

describe('reconciler plan', () => {
  const actual = new Map<number, ActualSegment>([
    [100, { vni: 100, vxlanIndex: 7, flood: new Set(['192.0.2.12', '192.0.2.99']) }],
    [200, { vni: 200, vxlanIndex: 8, flood: new Set() }],
  ]);
  it('adds what is missing and removes what is stale, nothing else', () => {
    const ops = plan(actual, [m(100, '192.0.2.12', 1), m(200, '192.0.2.13', 2), m(200, '192.0.2.11', 3)], '192.0.2.11');
    expect(ops).toEqual([
      { op: 'del', vni: 100, vxlanIndex: 7, dst: '192.0.2.99' },
      { op: 'add', vni: 200, vxlanIndex: 8, dst: '192.0.2.13' },
    ].sort((a, b) => (a.vni - b.vni)));
  });
  it('is empty when actual equals desired', () => {
    expect(plan(actual, [m(100, '192.0.2.12', 1), m(100, '192.0.2.99', 2)], '192.0.2.11')).toEqual([]);
  });
});

describe('parseMember', () => {
  it.each<[unknown, string]>([
    [null, 'not an object'], [{ vni: 0 }, 'vni'], [{ vni: 1, vtep: 'x' }, 'vtep'], [{ vni: 1, vtep: '224.0.0.1' }, 'unicast'],
    [{ vni: 1, vtep: '192.0.2.1', mac: 'zz' }, 'mac'], [{ vni: 1, vtep: '192.0.2.1', mac: '02:00:00:00:00:01' }, 'owner'],
  ])('rejects %p', (raw, why) => expect(parseMember(raw)).toContain(why));
  it('accepts a good entry', () => expect(parseMember(m(5, '198.51.100.7', 1))).toEqual(m(5, '198.51.100.7', 1)));
});
