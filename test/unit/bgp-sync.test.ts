// bgp-sync's pure parts: config validation, selectors, desired state, the gobgp plan, the peer record.
import * as fs from 'fs';
import * as path from 'path';
import { BgpConfigError, parseBgpSyncConf } from '../../plugin/bgp/config';
import { computeDesired } from '../../plugin/bgp/desired';
import { GobgpActual, gobgpDesired, planGobgp } from '../../plugin/bgp/gobgp-plan';
import { matches, parseSelector, toLabelSelector } from '../../plugin/cni/labels';
import { bgpPeerOf, eth0FromResult } from '../../plugin/cni/bgp-peer';
import { parsePluginBgp } from '../../plugin/cni/bgp-conf';
import { podInfoOf, PodInfo } from '../../plugin/bgp/pods';
import { toInternal } from '../../plugin/cni/versions';

const base = { localAsn: 65012, peerAsn: 65100, podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'] };
const conf = (extra: Record<string, unknown> = {}): ReturnType<typeof parseBgpSyncConf> =>
  parseBgpSyncConf({ ...base, ...extra }, { nodeName: 'n1' });

describe('bgp-sync config', () => {
  test('single-selector form, defaults, effective deny list', () => {
    const c = conf({ podSelector: 'app=lb', allowedPrefixes: ['198.51.100.0/24'], deniedPrefixes: ['203.0.113.0/24'], nodeAddresses: ['192.0.2.11'] });
    expect(c.speaker).toBe('gobgp');
    expect(c.api).toEqual({ host: '127.0.0.1', port: 50051 });
    expect(c.selectors).toHaveLength(1);
    expect(c.selectors[0]).toMatchObject({ name: 'default', peerAsn: 65100 });
    expect(c.selectors[0].allowed.map((p) => p.text)).toEqual(['198.51.100.0/24']);
    expect(c.denied.map((p) => p.text)).toEqual(['10.0.0.0/8', '172.20.0.0/16', '203.0.113.0/24', '192.0.2.11/32']);
  });

  test('underlay VTEP is denied too', () => {
    const c = parseBgpSyncConf({ ...base }, { nodeName: 'n1', underlayVtep: '192.0.2.12' });
    expect(c.denied.map((p) => p.text)).toContain('192.0.2.12/32');
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['no localAsn', { localAsn: undefined }, /bgp.localAsn is required/],
    ['ASN 0', { localAsn: 0 }, /bgp.localAsn must be an AS number/],
    ['ASN too big', { peerAsn: 4294967295 }, /bgp.peerAsn must be an AS number/],
    ['ASN AS_TRANS', { peerAsn: 23456 }, /not 23456/],
    ['ASN as string', { localAsn: '65012' }, /bgp.localAsn must be an AS number.*"65012"/],
    ['ASN fraction', { localAsn: 65012.5 }, /bgp.localAsn must be an AS number/],
    ['unknown speaker', { speaker: 'bird' }, /bgp.speaker must be "gobgp" or "cilium"/],
    ['unknown field', { neighbours: [] }, /bgp.neighbours is not a known field/],
    ['bad api', { api: 'localhost' }, /bgp.api "localhost" is not host:port/],
    ['bad api port', { api: '127.0.0.1:70000' }, /bgp.api "127.0.0.1:70000" is not host:port/],
    ['bad selector op', { podSelector: 'app=>lb' }, /podSelector: .*label value|cannot parse/],
    ['bad selector parens', { podSelector: 'app in (a,b' }, /unbalanced parentheses/],
    ['bad selector key', { podSelector: '-app=lb' }, /label key "-app" is invalid/],
    ['empty requirement', { podSelector: 'app=lb,,x=y' }, /empty requirement/],
    ['prefix not a prefix', { allowedPrefixes: ['banana'] }, /bgp.allowedPrefixes\[0\] "banana" is not a prefix/],
    ['prefix host bits', { allowedPrefixes: ['198.51.100.1/24'] }, /has host bits set; did you mean 198.51.100.0\/24/],
    ['prefix bad length', { allowedPrefixes: ['198.51.100.0/33'] }, /is not a prefix/],
    ['prefixes not a list', { allowedPrefixes: '198.51.100.0/24' }, /must be a list of prefixes/],
    ['no pod CIDRs', { podCidrs: undefined }, /bgp.podCidrs is required/],
    ['empty service CIDRs', { serviceCidrs: [] }, /bgp.serviceCidrs must not be empty/],
    ['allowed inside denied', { allowedPrefixes: ['10.96.0.0/12'] }, /10.96.0.0\/12 lies inside the denied 10.0.0.0\/8/],
    ['both forms', { podSelector: 'a=b', selectors: [{ name: 'x' }] }, /use one form, not both/],
    ['selector without name', { selectors: [{ podSelector: 'a=b' }] }, /bgp.selectors\[0\].name is required/],
    ['selector name', { selectors: [{ name: 'LB!' }] }, /must be 1-32 lower-case/],
    ['duplicate selector', { selectors: [{ name: 'a' }, { name: 'a' }] }, /name "a" is used twice/],
    ['selector ASN', { selectors: [{ name: 'a', peerAsn: -1 }] }, /bgp.selectors\[0\].peerAsn must be an AS number/],
    ['cilium without output', { speaker: 'cilium' }, /bgp.cilium must be an object with "outputDir"/],
    ['cilium bad version', { speaker: 'cilium', cilium: { outputDir: '/x', apiVersions: ['v1'] } }, /apiVersions must be a non-empty list/],
    ['bad source', { source: 'etcd' }, /bgp.source must be "static" or "kubernetes"/],
    ['bad resync', { resyncMs: 5 }, /bgp.resyncMs must be an integer/],
    ['bad node address', { nodeAddresses: ['192.0.2.300'] }, /is not a prefix/],
  ];
  test.each(bad)('refuses %s', (_name, extra, msg) => {
    const o: Record<string, unknown> = { ...base, ...extra };
    for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
    expect(() => parseBgpSyncConf(o, { nodeName: 'n1' })).toThrow(BgpConfigError);
    expect(() => parseBgpSyncConf(o, { nodeName: 'n1' })).toThrow(msg);
  });
  test('no bgp section', () => expect(() => parseBgpSyncConf(undefined)).toThrow(/no "bgp" section/));
  test('bad node name', () => expect(() => parseBgpSyncConf({ ...base }, { nodeName: 'Node_1' })).toThrow(/not a valid Kubernetes node name/));
});

describe('label selectors', () => {
  test.each([
    ['', { a: '1' }, true],
    ['app=lb', { app: 'lb' }, true],
    ['app==lb', { app: 'web' }, false],
    ['app!=lb', {}, true],
    ['app in (lb, fw)', { app: 'fw' }, true],
    ['app notin (lb,fw)', { app: 'fw' }, false],
    ['app', { app: '' }, true],
    ['!app', { app: 'x' }, false],
    ['app=lb,tier', { app: 'lb' }, false],
    ['example.com/role=edge', { 'example.com/role': 'edge' }, true],
  ])('%s on %j → %s', (sel, labels, want) => expect(matches(parseSelector(sel), labels)).toBe(want));
  test('to matchLabels/matchExpressions', () => {
    expect(toLabelSelector(parseSelector('app=lb,tier in (a,b),!x'))).toEqual({
      matchLabels: { app: 'lb' },
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }, { key: 'x', operator: 'DoesNotExist' }],
    });
  });
});

const pod = (key: string, labels: Record<string, string>, ip: string, annotations: Record<string, string> = {}): PodInfo => ({ key, labels, annotations, ips: [ip] });

describe('desired state', () => {
  const c = conf({ selectors: [
    { name: 'lb', podSelector: 'app=lb', allowedPrefixes: ['198.51.100.0/25'] },
    { name: 'fw', podSelector: 'app', peerAsn: 65200, allowedPrefixes: ['198.51.100.128/25'] },
  ] });
  test('first matching selector wins; annotation ASN wins; problems reported, not fatal', () => {
    const d = computeDesired(c, [
      pod('c', { app: 'lb' }, '10.10.1.9', { 'podlegs.io/bgp-asn': '65300' }),
      pod('a', { app: 'lb' }, '10.10.1.5'),
      pod('b', { app: 'fw' }, '10.10.1.6'),
      pod('d', { app: 'lb' }, '10.10.1.7', { 'podlegs.io/bgp-asn': 'sixty' }),
      pod('e', { other: 'x' }, '10.10.1.8'),
      pod('f', { app: 'lb' }, '10.10.1.5'),
    ]);
    expect(d.neighbors).toEqual([
      { address: '10.10.1.5', asn: 65100, selector: 'lb', pod: 'a' },
      { address: '10.10.1.6', asn: 65200, selector: 'fw', pod: 'b' },
      { address: '10.10.1.9', asn: 65300, selector: 'lb', pod: 'c' },
    ]);
    expect(d.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/pod d: annotation podlegs.io\/bgp-asn="sixty" is not an AS number/),
      expect.stringMatching(/pod f: eth0 address 10.10.1.5 is also pod a's/),
    ]);
    expect(d.guard.selectors.map((s) => [s.name, s.members])).toEqual([['lb', ['10.10.1.5', '10.10.1.9']], ['fw', ['10.10.1.6']]]);
  });
  test('no ASN anywhere → problem', () => {
    const d = computeDesired(parseBgpSyncConf({ ...base, peerAsn: undefined }, { nodeName: 'n1' }), [pod('a', {}, '10.10.1.5')]);
    expect(d.neighbors).toEqual([]);
    expect(d.problems[0].message).toMatch(/no peer ASN/);
  });
  test('Kubernetes Pod objects map to PodInfo', () => {
    const k = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'test', 'fixtures', 'pod-running.json'), 'utf8').toString());
    expect(podInfoOf(k)).toEqual({ key: 'nf/lb-0', namespace: 'nf', name: 'lb-0', labels: { app: 'lb' }, annotations: { 'podlegs.io/bgp-asn': '65101' }, ips: ['10.0.1.23', 'fd00::17'] });
    expect(podInfoOf({ ...k, spec: { hostNetwork: true } })).toBeUndefined();
    expect(podInfoOf({ ...k, status: { phase: 'Succeeded', podIP: '10.0.1.23' } })).toBeUndefined();
    expect(podInfoOf({ ...k, status: { phase: 'Pending' } })).toBeUndefined();
  });
});

const empty = (): GobgpActual => ({ neighbors: [], neighborSets: new Map(), prefixSets: new Map(), policies: new Map(), statements: [] });
const cmds = (ops: { argv: string[] }[]): string[] => ops.map((o) => o.argv.join(' '));

describe('gobgp plan', () => {
  const c = conf({ selectors: [
    { name: 'lb', podSelector: 'app=lb', allowedPrefixes: ['198.51.100.0/25'] },
    { name: 'fw', podSelector: 'app=fw', allowedPrefixes: ['198.51.100.128/25', '2001:db8::/32'] },
  ] });
  const want = gobgpDesired(computeDesired(c, [pod('a', { app: 'lb' }, '10.10.1.5'), pod('b', { app: 'fw' }, '10.10.1.6')]));

  /** Applies a plan to a model of gobgpd (enough for the ops the planner emits). */
  function simulate(a: GobgpActual, ops: { argv: string[] }[]): GobgpActual {
    const s: GobgpActual = { neighbors: [...a.neighbors], neighborSets: new Map([...a.neighborSets].map(([k, v]) => [k, [...v]])),
      prefixSets: new Map([...a.prefixSets].map(([k, v]) => [k, [...v]])), policies: new Map(a.policies), statements: [...a.statements],
      ...(a.importAssignment ? { importAssignment: a.importAssignment } : {}) };
    const stmts = new Map<string, { neighborSet: string; prefixSet?: string; action: 'accept' | 'reject' }>();
    for (const { argv } of ops) {
      const [a0, a1, a2, a3, ...r] = argv;
      if (a0 === 'neighbor' && a1 === 'add') s.neighbors.push({ address: a2, asn: Number(r[0]), established: false });
      else if (a0 === 'neighbor' && a1 === 'del') s.neighbors = s.neighbors.filter((n) => n.address !== a2);
      else if (a0 === 'policy' && a1 === 'neighbor' && a2 === 'add') { const l = s.neighborSets.get(a3) ?? []; if (r[0]) l.push(r[0]); s.neighborSets.set(a3, l); }
      else if (a0 === 'policy' && a1 === 'neighbor' && a2 === 'del') { if (r[0]) s.neighborSets.set(a3, s.neighborSets.get(a3)!.filter((x) => x !== r[0])); else s.neighborSets.delete(a3); }
      else if (a0 === 'policy' && a1 === 'prefix' && a2 === 'add') s.prefixSets.set(a3, [...(s.prefixSets.get(a3) ?? []), `${r[0]} ${r[1]}`]);
      else if (a0 === 'policy' && a1 === 'prefix' && a2 === 'del') { if (r[0]) s.prefixSets.set(a3, s.prefixSets.get(a3)!.filter((x) => x !== `${r[0]} ${r[1]}`)); else s.prefixSets.delete(a3); }
      else if (a0 === 'policy' && a1 === 'statement' && a2 === 'add') { stmts.set(a3, { neighborSet: '', action: 'accept' }); s.statements.push(a3); }
      else if (a0 === 'policy' && a1 === 'statement' && a2 === 'del') s.statements = s.statements.filter((x) => x !== a3);
      else if (a0 === 'policy' && a1 === 'statement') {
        const st = stmts.get(a2)!;
        if (r[1] === 'neighbor') st.neighborSet = r[2]; else if (r[1] === 'prefix') st.prefixSet = r[2]; else st.action = r[1] as 'accept';
      } else if (a0 === 'policy' && a1 === 'add') s.policies.set(a2, [a3, ...r].map((n) => ({ name: n, ...stmts.get(n)! })));
      else if (a0 === 'policy' && a1 === 'del') s.policies.delete(a2);
      else if (a0 === 'global' && a3 === 'set') s.importAssignment = { policies: r.slice(0, r.indexOf('default')), defaultAction: r[r.length - 1] as 'accept' };
      else if (a0 === 'global' && a3 === 'del') s.importAssignment = { ...s.importAssignment!, policies: s.importAssignment!.policies.filter((p) => p !== r[0]) };
    }
    return s;
  }

  test('from an empty speaker: sets, guard, assignment, then neighbors; converges', () => {
    const ops = cmds(planGobgp(want, empty()));
    expect(ops.indexOf('policy neighbor add podlegs-peers 10.10.1.5')).toBeLessThan(ops.indexOf('neighbor add 10.10.1.5 as 65100'));
    expect(ops).toEqual(expect.arrayContaining([
      'policy prefix add podlegs-denied 10.0.0.0/8 8..32', 'policy prefix add podlegs-allow-lb 198.51.100.0/25 25..32',
      'policy prefix add podlegs-allow6-fw 2001:db8::/32 32..128',
      'policy add podlegs-guard podlegs-deny podlegs-allow-lb podlegs-allow-fw podlegs-allow6-fw podlegs-rest',
      'global policy import set podlegs-guard default accept',
      // never-empty neighbor-sets: gobgpd matches an empty set against every neighbor
      'policy neighbor add podlegs-peers 0.0.0.0', 'policy neighbor add podlegs-sel-lb 0.0.0.0',
    ]));
    const after = simulate(empty(), planGobgp(want, empty()));
    expect(planGobgp(want, after)).toEqual([]);
  });

  test('pod restart with a new IP: old neighbor removed, new one added, upstream untouched', () => {
    const before = simulate({ ...empty(), neighbors: [{ address: '203.0.113.2', asn: 65000, established: true }] }, planGobgp(want, empty()));
    const moved = gobgpDesired(computeDesired(c, [pod('a2', { app: 'lb' }, '10.10.1.7'), pod('b', { app: 'fw' }, '10.10.1.6')]));
    const ops = cmds(planGobgp(moved, before));
    expect(ops).toEqual([
      'policy neighbor add podlegs-peers 10.10.1.7', 'policy neighbor add podlegs-sel-lb 10.10.1.7',
      'neighbor del 10.10.1.5', 'neighbor add 10.10.1.7 as 65100',
      'policy neighbor del podlegs-peers 10.10.1.5', 'policy neighbor del podlegs-sel-lb 10.10.1.5',
    ]);
  });

  test('admin policies stay after the guard; default action kept', () => {
    const a = simulate({ ...empty(), importAssignment: { policies: ['admin'], defaultAction: 'reject' } }, []);
    expect(cmds(planGobgp(want, a))).toContain('global policy import set podlegs-guard admin default reject');
  });

  test('a changed allow list narrows the set and re-checks established peers', () => {
    const a = simulate(empty(), planGobgp(want, empty()));
    a.neighbors = a.neighbors.map((n) => ({ ...n, established: true }));
    const narrower = gobgpDesired(computeDesired(conf({ selectors: [
      { name: 'lb', podSelector: 'app=lb', allowedPrefixes: ['198.51.100.0/26'] },
      { name: 'fw', podSelector: 'app=fw', allowedPrefixes: ['198.51.100.128/25', '2001:db8::/32'] },
    ] }), [pod('a', { app: 'lb' }, '10.10.1.5'), pod('b', { app: 'fw' }, '10.10.1.6')]));
    expect(cmds(planGobgp(narrower, a))).toEqual([
      'policy prefix add podlegs-allow-lb 198.51.100.0/26 26..32', 'policy prefix del podlegs-allow-lb 198.51.100.0/25 25..32',
      'neighbor 10.10.1.5 softresetin', 'neighbor 10.10.1.6 softresetin',
    ]);
  });
});

describe('pod side: eth0 and the podlegs.io/bgp-peer record', () => {
  test('from Cilium\'s ADD result (reference): eth0 /32, gateway = cilium_host', () => {
    const prev = toInternal(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cilium-cni-add-result.json'), 'utf8')), 'prevResult');
    const eth0 = eth0FromResult(prev, 'eth0');
    expect(eth0?.ips).toHaveLength(1);
    expect(eth0?.gateway).toBe(prev.ips![0].gateway);
    expect(bgpPeerOf(eth0, 65012)).toEqual({ address: prev.ips![0].gateway, asn: 65012 });
  });
  test('gateway from the default route when the IP has none; no gateway → no record', () => {
    const prev = { interfaces: [{ name: 'veth1' }, { name: 'eth0', sandbox: '/x' }], ips: [{ address: '10.10.1.5/32', interface: 1 }], routes: [{ dst: '0.0.0.0/0', gw: '10.10.1.1' }] };
    expect(eth0FromResult(prev)).toEqual({ ips: ['10.10.1.5'], gateway: '10.10.1.1' });
    expect(bgpPeerOf(eth0FromResult({ ips: [{ address: '10.10.1.5/32' }] }), 65012)).toBeUndefined();
    expect(eth0FromResult(undefined)).toBeUndefined();
  });
  test('plugin config: bgp.localAsn, args.cni.labels, clear errors', () => {
    expect(parsePluginBgp({ localAsn: 65012, speaker: 'gobgp' }, { cni: { labels: [{ key: 'app', value: 'lb' }] } }))
      .toEqual({ bgp: { localAsn: 65012 }, labels: { app: 'lb' } });
    expect(() => parsePluginBgp({ localAsn: 0 }, undefined)).toThrow(/bgp.localAsn must be an AS number/);
    expect(() => parsePluginBgp({ nodeAsn: 1 }, undefined)).toThrow(/bgp.nodeAsn is not a known field/);
    expect(() => parsePluginBgp(undefined, { cni: { labels: [{ key: 'app', value: 'a b' }] } })).toThrow(/args.cni.labels\[0\]: label value "a b" is invalid/);
    expect(() => parsePluginBgp(undefined, { cni: { labels: { app: 'lb' } } })).toThrow(/args.cni.labels must be a list/);
  });
});
