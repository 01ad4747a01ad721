import { desiredState } from '../../overlay/agent/desired';
import { planFdb, readSegments, SegmentState } from '../../overlay/agent/reconciler';
import { Grace, removeLegsAndEmptySegments, segmentsToRemove } from '../../overlay/segment';
import { ZERO_MAC } from '../../overlay/kernel/kernel';
import { parseMember, vtepProblem } from '../../overlay/registry/member';
import { FakeKernel, member } from './agent-fake';

const A = '192.0.2.11';
const B = '192.0.2.12';
const C = '192.0.2.13';

describe('desiredState', () => {
  it('floods to each remote VTEP with a member once, never to itself, only for local VNIs', () => {
    const d = desiredState([member(100, A, 1), member(100, B, 2), member(100, B, 3), member(200, C, 4), member(300, C, 5)], A, [100, 200]);
    expect([...d.segments.keys()]).toEqual([100, 200]);
    expect([...d.segments.get(100)!.flood]).toEqual([B]);
    expect([...d.segments.get(100)!.macs]).toEqual([[member(0, B, 2).mac, B], [member(0, B, 3).mac, B]]);
    expect([...d.segments.get(200)!.flood]).toEqual([C]);
    expect(d.problems).toEqual([]);
  });

  it('gives a VNI nobody else has an empty segment (entries towards it get removed)', () => {
    const d = desiredState([member(100, A, 1)], A, [100]);
    expect(d.segments.get(100)).toEqual({ flood: new Set(), macs: new Map() });
  });

  it('gives a MAC claimed by two VTEPs no static entry, still floods to both, and reports it', () => {
    const dup = { ...member(100, C, 7), mac: member(0, B, 2).mac };
    const d = desiredState([member(100, B, 2), dup, { ...dup, owner: 'other' }], A, [100]);
    expect([...d.segments.get(100)!.flood].sort()).toEqual([B, C]);
    expect(d.segments.get(100)!.macs.size).toBe(0);
    expect(d.problems).toEqual([{ where: `vni 100 mac ${dup.mac}`, reason: expect.stringContaining(`${B}, ${C}`) }]);
  });

  it('skips members whose VTEP family the local VTEP cannot reach', () => {
    const d = desiredState([member(100, '2001:db8::2', 1), member(100, B, 2)], A, [100]);
    expect([...d.segments.get(100)!.flood]).toEqual([B]);
    expect(d.problems[0].reason).toContain('not reachable');
  });
});

const seg = (vni: number, vxlanIndex: number, flood: string[], macs: [string, string[]][] = [], legs = ['pl000000000001']): SegmentState =>
  ({ vni, vxlanIndex, bridgeIndex: vxlanIndex - 1, legs, flood: new Set(flood), macs: new Map(macs.map(([m, d]) => [m, new Set(d)])) });

describe('planFdb', () => {
  const mac1 = '02:00:00:00:00:01';
  const mac2 = '02:00:00:00:00:02';

  it('adds what is missing, removes what is stale, leaves correct entries alone; additions first', () => {
    const actual = new Map([[100, seg(100, 7, [B, '192.0.2.99'], [[mac1, [B]], ['02:00:00:00:00:99', ['192.0.2.99']]])], [200, seg(200, 9, [])]]);
    const want = desiredState([member(100, B, 1), member(100, C, 2), member(200, C, 3)], A, actual.keys()).segments;
    const ch = planFdb(actual, want).map((c) => `${c.op} ${c.vni} ${c.mac} ${c.dst}`);
    expect(ch).toEqual([
      `add 100 ${ZERO_MAC} ${C}`, `add 100 ${mac2} ${C}`, `add 200 ${ZERO_MAC} ${C}`, `add 200 ${member(0, C, 3).mac} ${C}`,
      `del 100 ${ZERO_MAC} 192.0.2.99`, 'del 100 02:00:00:00:00:99 192.0.2.99',
    ]);
  });

  it('is empty when the kernel already equals the membership (a restart changes nothing)', () => {
    const actual = new Map([[100, seg(100, 7, [B], [[mac1, [B]]])]]);
    expect(planFdb(actual, desiredState([member(100, B, 1), member(100, A, 2)], A, [100]).segments)).toEqual([]);
  });

  it('moves a MAC to its new VTEP by replacing it, then deletes the old destination', () => {
    const actual = new Map([[100, seg(100, 7, [B, C], [[mac1, [B]]])]]);
    const ch = planFdb(actual, desiredState([member(100, C, 1), member(100, B, 5)], A, [100]).segments);
    expect(ch.map((c) => `${c.op} ${c.mac} ${c.dst}`)).toEqual([`add ${mac1} ${C}`, `add ${member(0, B, 5).mac} ${B}`, `del ${mac1} ${B}`]);
  });

  it('skips a segment whose VXLAN device is missing', () => {
    const s = seg(100, 7, []);
    delete s.vxlanIndex;
    expect(planFdb(new Map([[100, s]]), desiredState([member(100, B, 1)], A, [100]).segments)).toEqual([]);
  });
});

describe('segmentsToRemove (the one segment-removal rule)', () => {
  const owner = { local: A, port: 4789 };
  const grace = (now: number, graceMs: number, emptySince = new Map<number, number>(), busy?: Set<number>): Grace => ({ graceMs, emptySince, now, busy });
  const fake = (legs: Record<number, number>): FakeKernel => {
    const k = new FakeKernel();
    for (const [v, n] of Object.entries(legs)) k.addSegment(Number(v), n, A);
    return k;
  };

  it('removes a segment only after it was empty for the whole grace period', async () => {
    const links = await fake({ 100: 0, 200: 1 }).links();
    const since = new Map<number, number>();
    expect(segmentsToRemove(links, owner, grace(1000, 500, since))).toEqual({ remove: new Map(), nextCheck: 1500 });
    expect(segmentsToRemove(links, owner, grace(1499, 500, since)).remove.size).toBe(0);
    expect([...segmentsToRemove(links, owner, grace(1500, 500, since)).remove.keys()]).toEqual([100]);
  });

  it('restarts the clock when a leg comes back, and never removes a busy VNI', async () => {
    const k = fake({ 100: 0 });
    const since = new Map<number, number>();
    segmentsToRemove(await k.links(), owner, grace(0, 500, since));
    k.addLeg(100);
    segmentsToRemove(await k.links(), owner, grace(400, 500, since));
    k.removeLegs(100);
    const empty = await k.links();
    expect(segmentsToRemove(empty, owner, grace(600, 500, since)).remove.size).toBe(0);
    expect(segmentsToRemove(empty, owner, grace(5000, 500, since, new Set([100]))).remove.size).toBe(0);
    expect([...segmentsToRemove(empty, owner, grace(5000, 500, since)).remove.keys()]).toEqual([]); // busy restarted the clock
    expect([...segmentsToRemove(empty, owner, grace(5500, 500, since)).remove.keys()]).toEqual([100]);
  });

  it('with no grace removes at once, both devices, counting leaving links as gone', async () => {
    const k = fake({ 100: 1 });
    const links = await k.links();
    const leg = links.find((l) => l.kind === 'veth')!;
    const r = segmentsToRemove(links, owner, grace(0, 0), [100], new Set([leg.index]));
    expect(r.remove.get(100)?.sort()).toEqual(links.filter((l) => l.name === 'plbr100' || l.name === 'plvx100').map((l) => l.index).sort());
  });

  it('never touches a device of another kind, VNI, local address or port, nor its segment', async () => {
    const k = new FakeKernel();
    k.addSegment(100, 0, C);                                                                               // another local address
    k.addSegment(200, 0, A);
    k.links_ = k.links_.map((l) => (l.name === 'plvx200' ? { ...l, vxlan: { ...l.vxlan!, port: 8472 } } : l)); // another port
    k.links_.push({ index: 90, name: 'plbr300', kind: 'dummy', mtu: 1500, mac: '', up: true });              // another kind
    k.links_.push({ index: 91, name: 'plvx400', kind: 'vxlan', mtu: 1500, mac: '', up: true, vxlan: { vni: 7, port: 4789, local: A } }); // another VNI
    const before = k.links_.map((l) => l.name).sort();
    const r = await removeLegsAndEmptySegments(k, { hostIfs: [], owner, grace: grace(0, 0) });
    expect(r.removed).toEqual([]);
    expect(k.links_.map((l) => l.name).sort()).toEqual(before);
    expect((await removeLegsAndEmptySegments(k, { hostIfs: [], vnis: [300, 400], owner, grace: grace(0, 0) })).removed).toEqual([]);
  });

  it('removes an empty bridge of ours beside a foreign VXLAN device that is not its port, leaving that device', async () => {
    const k = new FakeKernel();
    k.links_.push({ index: 80, name: 'plbr100', kind: 'bridge', mtu: 1500, mac: '', up: true });
    k.links_.push({ index: 81, name: 'plvx100', kind: 'vxlan', mtu: 1500, mac: '', up: false, vxlan: { vni: 999, port: 4789, local: A } });
    expect((await removeLegsAndEmptySegments(k, { hostIfs: [], vnis: [100], owner, grace: grace(0, 0) })).removed).toEqual([100]);
    expect(k.links_.map((l) => l.name)).toEqual(['plvx100']);
  });
});

describe('readSegments', () => {
  it('reads only podlegs segments of the right kind and VNI, with legs and permanent entries', async () => {
    const k = new FakeKernel();
    const vx = k.addSegment(100, 2);
    k.links_.push({ index: 90, name: 'plvx200', kind: 'dummy', mtu: 1500, mac: '', up: true }); // not ours: wrong kind
    k.links_.push({ index: 91, name: 'plvx300', kind: 'vxlan', mtu: 1500, mac: '', up: true, vxlan: { vni: 7, port: 4789 } }); // wrong VNI
    k.links_.push({ index: 92, name: 'vxlan0', kind: 'vxlan', mtu: 1500, mac: '', up: true, vxlan: { vni: 5, port: 4789 } });
    k.fdb.push({ ifindex: vx, mac: ZERO_MAC, dst: B, permanent: true }, { ifindex: vx, mac: '02:00:00:00:00:01', dst: C, permanent: true },
      { ifindex: vx, mac: '02:00:00:00:00:02', dst: C, permanent: false }, { ifindex: 92, mac: ZERO_MAC, dst: C, permanent: true });
    const s = await readSegments(k);
    expect([...s.keys()]).toEqual([100]);
    expect(s.get(100)!.legs).toHaveLength(2);
    expect([...s.get(100)!.flood]).toEqual([B]);
    expect([...s.get(100)!.macs.keys()]).toEqual(['02:00:00:00:00:01']);
  });
});

describe('member validation', () => {
  it.each([
    ['0.0.0.0', 'unspecified'], ['224.0.0.5', 'multicast'], ['255.255.255.255', 'broadcast'], ['127.0.0.1', 'loopback'],
    ['169.254.1.1', 'linkLocal'], ['240.0.0.1', 'class E'], ['::', 'unspecified'], ['ff02::1', 'multicast'], ['fe80::1', 'linkLocal'],
    ['::1', 'loopback'], ['192.0.2.300', 'not an IP'], ['host.example', 'not an IP'],
  ])('rejects VTEP %s (%s)', (ip, why) => expect(vtepProblem(ip)).toContain(why));
  it.each(['192.0.2.1', '10.1.2.3', '2001:db8::1', '198.51.100.7'])('accepts VTEP %s', (ip) => expect(vtepProblem(ip)).toBeUndefined());
  it.each([['01:00:5e:00:00:01'], ['00:00:00:00:00:00'], ['ff:ff:ff:ff:ff:ff']])('rejects group/zero MAC %s', (mac) =>
    expect(parseMember({ vni: 1, vtep: B, mac, owner: 'x' })).toContain('not a unicast one'));
});
