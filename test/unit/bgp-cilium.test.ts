// Cilium resources rendered by bgp-sync, validated against the Cilium CRD schemas (test/fixtures/cilium-crds).
import * as fs from 'fs';
import * as path from 'path';
import { parseBgpSyncConf } from '../../plugin/bgp/config';
import { computeDesired } from '../../plugin/bgp/desired';
import * as os from 'os';
import { CiliumFileSpeaker, CiliumObject, renderCilium } from '../../plugin/bgp/cilium';
import { toYaml } from '../../plugin/bgp/yaml';
import type { PodInfo } from '../../plugin/bgp/pods';
import { checkMeta, crdSchema, Schema, validate } from './support/openapi';

const crd = (name: string): { spec: { names: { kind: string }; group: string; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } } =>
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cilium-crds', `${name}.json`), 'utf8'));
const CRDS = ['ciliumbgpclusterconfigs', 'ciliumbgppeerconfigs', 'ciliumbgppeeringpolicies'].map(crd);

function check(o: CiliumObject): string[] {
  const [group, version] = o.apiVersion.split('/');
  const c = CRDS.find((x) => x.spec.names.kind === o.kind && x.spec.group === group);
  if (!c) return [`no CRD for ${o.apiVersion} ${o.kind}`];
  return [...validate(o, crdSchema(c, version)), ...checkMeta(o.metadata as Record<string, unknown>)];
}

const conf = parseBgpSyncConf({
  speaker: 'cilium', localAsn: 65012, peerAsn: 65100, podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'],
  nodeAddresses: ['192.0.2.11'], deniedPrefixes: ['203.0.113.0/24'],
  selectors: [
    { name: 'lb', podSelector: 'app=lb,tier in (edge,core)', allowedPrefixes: ['198.51.100.0/25', '2001:db8:100::/48'] },
    { name: 'fw', podSelector: 'app=fw', peerAsn: 65200, allowedPrefixes: ['198.51.100.128/25'] },
  ],
  cilium: { outputDir: '/tmp/unused', apiVersions: ['v2', 'v2alpha1'] },
}, { nodeName: 'worker-1' });

const pod = (key: string, labels: Record<string, string>, ips: string[], annotations: Record<string, string> = {}): PodInfo =>
  ({ key, namespace: 'nf', name: key, labels, annotations, ips });
const pods = [
  pod('lb-a', { app: 'lb', tier: 'edge' }, ['10.0.1.5']),
  pod('lb-b', { app: 'lb', tier: 'core' }, ['10.0.1.6', 'fd00::6'], { 'podlegs.io/bgp-asn': '65101' }),
  pod('fw-a', { app: 'fw' }, ['10.0.1.7']),
  pod('other', { app: 'web' }, ['10.0.1.8']),
];

describe('Cilium rendering', () => {
  const objs = renderCilium(computeDesired(conf, pods), { nodeName: 'worker-1', apiVersions: ['v2', 'v2alpha1'], selectors: conf.selectors });

  test('renders peer configs, a per-node cluster config and a peering policy', () => {
    expect(objs.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`)).toEqual([
      'cilium.io/v2 CiliumBGPPeerConfig podlegs-lb',
      'cilium.io/v2 CiliumBGPPeerConfig podlegs-fw',
      'cilium.io/v2 CiliumBGPClusterConfig podlegs-worker-1',
      'cilium.io/v2alpha1 CiliumBGPPeeringPolicy podlegs-worker-1',
    ]);
    const cc = objs[2].spec as { bgpInstances: { localASN: number; peers: { name: string; peerAddress: string; peerASN: number; peerConfigRef: { name: string } }[] }[] };
    expect(cc.bgpInstances[0].localASN).toBe(65012);
    expect(cc.bgpInstances[0].peers).toEqual([
      { name: 'pod-10-0-1-5', peerAddress: '10.0.1.5', peerASN: 65100, peerConfigRef: { name: 'podlegs-lb' } },
      { name: 'pod-10-0-1-6', peerAddress: '10.0.1.6', peerASN: 65101, peerConfigRef: { name: 'podlegs-lb' } },
      { name: 'pod-10-0-1-7', peerAddress: '10.0.1.7', peerASN: 65200, peerConfigRef: { name: 'podlegs-fw' } },
    ]);
    const pp = objs[3].spec as { virtualRouters: { neighbors: { peerAddress: string }[] }[] };
    expect(pp.virtualRouters[0].neighbors.map((n) => n.peerAddress)).toEqual(['10.0.1.5/32', '10.0.1.6/32', '10.0.1.7/32']);
    expect(objs[0].spec.families).toEqual([{ afi: 'ipv4', safi: 'unicast' }, { afi: 'ipv6', safi: 'unicast' }]);
  });

  test.each([0, 1, 2, 3])('object %i validates against its CRD schema', (i) => {
    expect(check(objs[i])).toEqual([]);
  });

  test('no pods: cluster config with no peers; no peering policy (v2alpha1 needs a neighbor)', () => {
    const none = renderCilium(computeDesired(conf, []), { nodeName: 'worker-1', apiVersions: ['v2', 'v2alpha1'], selectors: conf.selectors });
    expect(none.map((o) => o.kind)).toEqual(['CiliumBGPPeerConfig', 'CiliumBGPPeerConfig', 'CiliumBGPClusterConfig']);
    for (const o of none) expect(check(o)).toEqual([]);
  });

  test('the checker catches what the API server would refuse', () => {
    const bad = JSON.parse(JSON.stringify(objs[2])) as CiliumObject;
    const inst = (bad.spec.bgpInstances as Record<string, unknown>[])[0];
    inst.localASN = 0;
    (inst.peers as Record<string, unknown>[])[0].peerAddress = '10.0.1.5/32';
    (inst.peers as Record<string, unknown>[])[1].name = 'pod-10-0-1-5';
    inst.importPolicy = 'reject';
    expect(check(bad)).toEqual(expect.arrayContaining([
      expect.stringMatching(/localASN: 0 < 1/), expect.stringMatching(/peerAddress: "10.0.1.5\/32" does not match pattern/),
      expect.stringMatching(/duplicate list-map key/), expect.stringMatching(/unknown field importPolicy/),
    ]));
    const badPolicy = JSON.parse(JSON.stringify(objs[3])) as CiliumObject;
    ((badPolicy.spec.virtualRouters as Record<string, unknown>[])[0].neighbors as Record<string, unknown>[])[0].families = [{ afi: 'ipv4', safi: 'anycast' }];
    expect(check(badPolicy)).toEqual([expect.stringMatching(/"anycast" not in enum/)]);
  });

  test('the guard is recorded as an audit annotation, marked not enforced', () => {
    const g = JSON.parse(objs[2].metadata.annotations!['podlegs.io/prefix-guard']) as { denied: string[]; allowed: Record<string, string[]>; enforcedByCilium: boolean };
    expect(g.enforcedByCilium).toBe(false);
    expect(g.denied).toEqual(['10.0.0.0/8', '172.20.0.0/16', '203.0.113.0/24', '192.0.2.11/32']);
    expect(g.allowed).toEqual({ lb: ['198.51.100.0/25', '2001:db8:100::/48'], fw: ['198.51.100.128/25'] });
  });

  test('YAML output: JSON-quoted scalars, block lists, one document per object', () => {
    const y = toYaml(objs);
    expect(y.startsWith('---\napiVersion: "cilium.io/v2"\nkind: "CiliumBGPPeerConfig"\n')).toBe(true);
    expect(y).toContain('\n    peers:\n    - name: "pod-10-0-1-5"\n      peerAddress: "10.0.1.5"\n      peerASN: 65100\n      peerConfigRef:\n        name: "podlegs-lb"\n');
    expect(y.split('---\n').length - 1).toBe(4);
  });

  test('upstream peers share the node\'s one ClusterConfig / PeeringPolicy with the pods', () => {
    const up = parseBgpSyncConf({ ...JSON.parse(JSON.stringify({ localAsn: 65012, peerAsn: 65100, podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'] })),
      speaker: 'cilium', cilium: { outputDir: '/x', apiVersions: ['v2', 'v2alpha1'], exportPodCIDR: true,
        upstreamPeers: [{ name: 'tor', peerAddress: '192.0.2.1', peerASN: 65000, peerConfig: 'tor-peer' }] } }, { nodeName: 'worker-1' });
    const c = up.cilium!;
    const o = renderCilium(computeDesired(up, []), { nodeName: 'worker-1', apiVersions: c.apiVersions, selectors: up.selectors, upstreamPeers: c.upstreamPeers, exportPodCIDR: c.exportPodCIDR });
    for (const x of o) expect(check(x)).toEqual([]);
    const cc = o.find((x) => x.kind === 'CiliumBGPClusterConfig')!.spec as { bgpInstances: { peers: unknown[] }[] };
    expect(cc.bgpInstances[0].peers).toEqual([{ name: 'tor', peerAddress: '192.0.2.1', peerASN: 65000, peerConfigRef: { name: 'tor-peer' } }]);
    const pp = o.find((x) => x.kind === 'CiliumBGPPeeringPolicy')!.spec as { virtualRouters: { exportPodCIDR: boolean; neighbors: unknown[] }[] };
    expect(pp.virtualRouters[0]).toMatchObject({ exportPodCIDR: true, neighbors: [{ peerAddress: '192.0.2.1/32', peerASN: 65000 }] });
    expect(() => parseBgpSyncConf({ localAsn: 65012, podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'], speaker: 'cilium',
      cilium: { outputDir: '/x', upstreamPeers: [{ name: 'pod-x', peerAddress: '192.0.2.1', peerASN: 65000 }] } }, { nodeName: 'n1' })).toThrow(/not starting with "pod-"/);
  });

  test('the file speaker writes what changed, removes what is gone, and is idempotent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-cilium-'));
    try {
      const sp = new CiliumFileSpeaker(dir, { nodeName: 'worker-1', apiVersions: ['v2', 'v2alpha1'], selectors: conf.selectors });
      const first = await sp.sync(computeDesired(conf, pods));
      expect(first.ops).toHaveLength(4);
      expect(fs.readdirSync(dir).sort()).toEqual(['ciliumbgpclusterconfig-podlegs-worker-1.json', 'ciliumbgppeerconfig-podlegs-fw.json',
        'ciliumbgppeerconfig-podlegs-lb.json', 'ciliumbgppeeringpolicy-podlegs-worker-1.json']);
      expect((await sp.sync(computeDesired(conf, pods))).ops).toEqual([]);
      const dry = await sp.sync(computeDesired(conf, []), { dryRun: true });
      expect(dry.ops).toEqual(['write ciliumbgpclusterconfig-podlegs-worker-1.json', 'remove ciliumbgppeeringpolicy-podlegs-worker-1.json']);
      expect(fs.readdirSync(dir)).toHaveLength(4);
      await sp.sync(computeDesired(conf, []));
      expect(fs.readdirSync(dir)).not.toContain('ciliumbgppeeringpolicy-podlegs-worker-1.json');
      for (const f of fs.readdirSync(dir)) expect(check(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
