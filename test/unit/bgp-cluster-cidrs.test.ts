// bgp-sync in Kubernetes mode without bgp.podCidrs/bgp.serviceCidrs: the deny list is completed
// from the cluster (Node podCIDRs, CiliumNode, CiliumPodIPPool, ServiceCIDR) before anything is
// applied, through the same config loading `podlegs bgp-sync` does, against the fake API server.
import * as fs from 'fs';
import * as path from 'path';
import { loopbackFakeApi } from '../k8s/fake-apiserver';
import { loadBgpSyncConfig, withDerivedCidrs } from '../../plugin/cli/bgp-sync-cmd';
import type { Log } from '../../plugin/log';

type Fake = Awaited<ReturnType<typeof loopbackFakeApi>>;
let k: Fake;
beforeEach(async () => { k = await loopbackFakeApi(); });
afterEach(async () => { await k.stop(); });

const warnings: string[] = [];
const log: Log = { debug: () => undefined, info: () => undefined, warn: (m) => { warnings.push(m); }, error: () => undefined };

/** The node config file bgp-sync reads: Kubernetes mode, bgp section as given. */
function configFile(bgp: Record<string, unknown>, kubernetes = true): string {
  const file = path.join(k.dir, 'node.json');
  fs.writeFileSync(file, JSON.stringify({
    underlay: { interface: 'eth0', vtep: '192.0.2.11' }, stateDir: path.join(k.dir, 'state'),
    ...(kubernetes ? { kubernetes: { kubeconfig: k.kubeconfig } } : {}),
    bgp: { localAsn: 65012, peerAsn: 65100, podSelector: 'app=lb', allowedPrefixes: ['198.51.100.0/24'], nodeName: 'n1', ...bgp },
  }));
  return file;
}
const derive = async (bgp: Record<string, unknown>): Promise<string[]> =>
  (await withDerivedCidrs(loadBgpSyncConfig(configFile(bgp)), log)).bgp.denied.map((p) => p.text);

const node = (name: string, spec: Record<string, unknown>) => ({ metadata: { name }, spec });

test('derives pod CIDRs from every Node and service CIDRs from ServiceCIDR objects', async () => {
  k.api.put('nodes', node('n1', { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'] }));
  k.api.put('nodes', node('n2', { podCIDR: '10.244.1.0/24' })); // an older node: only the singular field
  k.api.put('nodes', node('n3', {})); // not allocated yet
  k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12', 'fd00:10:96::/112'] } });
  k.api.absent.add('ciliumnodes').add('ciliumpodippools'); // no Cilium CRDs: not an error
  expect(await derive({})).toEqual(['10.96.0.0/12', '10.244.0.0/24', '10.244.1.0/24', '192.0.2.11/32', 'fd00:10:244::/64', 'fd00:10:96::/112']);
});

test('derives pod CIDRs from CiliumNode and CiliumPodIPPool; ServiceCIDR v1beta1 after a 404 for v1', async () => {
  k.api.put('nodes', node('n1', {})); // cluster-pool IPAM: Node podCIDRs stay empty
  k.api.put('ciliumnodes', { metadata: { name: 'n1' }, spec: { ipam: { podCIDRs: ['10.0.1.0/24'] } } });
  k.api.put('ciliumnodes', { metadata: { name: 'n2' }, spec: { ipam: { podCIDRs: ['10.0.2.0/24'] } } });
  k.api.put('ciliumpodippools', { metadata: { name: 'nf' }, spec: { ipv4: { cidrs: ['10.20.0.0/16'], maskSize: 27 }, ipv6: { cidrs: ['fd00:20::/104'], maskSize: 120 } } });
  k.api.put('ciliumpodippools', { metadata: { name: 'inside' }, spec: { ipv4: { cidrs: ['10.20.4.0/24'], maskSize: 27 } } }); // within nf's: one entry
  k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['172.20.0.0/16'] } });
  k.api.absent.add('networking.k8s.io/v1/servicecidrs'); // Kubernetes 1.31/1.32 with the beta API enabled
  expect(await derive({})).toEqual(['10.20.0.0/16', '172.20.0.0/16', '10.0.1.0/24', '10.0.2.0/24', '192.0.2.11/32', 'fd00:20::/104']);
  const asked = k.api.calls.map((c) => c.path.split('?')[0]);
  expect(asked).toEqual(expect.arrayContaining(['/apis/networking.k8s.io/v1/servicecidrs', '/apis/networking.k8s.io/v1beta1/servicecidrs']));
});

test('nothing anywhere: a clear error naming every source looked at', async () => {
  k.api.put('nodes', node('n1', {}));
  for (const r of ['ciliumnodes', 'ciliumpodippools', 'servicecidrs']) k.api.absent.add(r);
  const err = await derive({}).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  const msg = (err as Error).message;
  expect(msg).toMatch(/^bgp.podCidrs is not set and the cluster does not tell: looked at /);
  expect(msg).toContain('Node spec.podCIDRs (GET /api/v1/nodes: 1 object, 0 CIDRs)');
  expect(msg).toContain('CiliumNode spec.ipam.podCIDRs (GET /apis/cilium.io/v2/ciliumnodes: not available (404))');
  expect(msg).toContain('CiliumPodIPPool spec.ipv4.cidrs/spec.ipv6.cidrs (GET /apis/cilium.io/v2alpha1/ciliumpodippools: not available (404))');
  expect(msg).toMatch(/set bgp.podCidrs in the bgp section$/);
  // with pod CIDRs configured, the service side is the one that cannot be told
  const svc = await derive({ podCidrs: ['10.0.0.0/8'] }).catch((e: Error) => e.message);
  expect(svc).toBe('bgp.serviceCidrs is not set and the cluster does not tell: looked at ServiceCIDR spec.cidrs (GET /apis/networking.k8s.io/v1/servicecidrs: not available (404)), '
    + 'ServiceCIDR spec.cidrs (GET /apis/networking.k8s.io/v1beta1/servicecidrs: not available (404)); set bgp.serviceCidrs in the bgp section');
});

test('an API error other than 404 is an error, not "not available"', async () => {
  k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
  k.api.faults.push({ status: 403, times: 1, match: /^GET \/apis\/cilium.io\/v2\/ciliumnodes$/ });
  k.api.put('nodes', node('n1', { podCIDRs: ['10.244.0.0/24'] }));
  await expect(derive({})).rejects.toThrow(/^bgp.podCidrs is not set and CiliumNode spec.ipam.podCIDRs could not be read: GET \/apis\/cilium.io\/v2\/ciliumnodes\?limit=500: 403/);
});

test('configured values win: no API request for a list the config has', async () => {
  k.api.put('nodes', node('n1', { podCIDRs: ['10.244.0.0/24'] }));
  k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
  expect(await derive({ podCidrs: ['10.0.0.0/8'], serviceCidrs: ['172.20.0.0/16'] })).toEqual(['10.0.0.0/8', '172.20.0.0/16', '192.0.2.11/32']);
  expect(k.api.calls).toEqual([]);
  expect(await derive({ podCidrs: ['10.0.0.0/8'] })).toEqual(['10.0.0.0/8', '10.96.0.0/12', '192.0.2.11/32']);
  expect(k.api.calls.map((c) => c.path.split('?')[0])).toEqual(['/apis/networking.k8s.io/v1/servicecidrs']);
});

test('an allowed prefix inside a derived CIDR is refused, naming where the CIDR came from', async () => {
  k.api.put('nodes', node('n1', { podCIDRs: ['10.244.0.0/24'] }));
  k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['198.51.100.0/24'] } });
  await expect(derive({ allowedPrefixes: ['198.51.100.128/25'] })).rejects
    .toThrow('bgp.allowedPrefixes: 198.51.100.128/25 lies inside the denied 198.51.100.0/24 (ServiceCIDR kubernetes spec.cidrs); it could never be accepted');
});

test('without a kubernetes section the CIDRs are still required', () => {
  expect(() => loadBgpSyncConfig(configFile({}, false))).toThrow(/bgp.podCidrs is required/);
  expect(() => loadBgpSyncConfig(configFile({ podCidrs: [] }))).toThrow(/bgp.podCidrs must not be empty/);
});

test('podlegs bgp-sync --render: the derived CIDRs are in the guard; nothing derivable: exit 1, one line', async () => {
  const { runCli } = await import('../../plugin/cli/cli');
  const out: string[] = [];
  const err: string[] = [];
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s) => { out.push(String(s)); return true; });
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { err.push(String(s)); return true; });
  try {
    k.api.put('nodes', node('n1', { podCIDRs: ['10.244.0.0/24'] }));
    k.api.put('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/12'] } });
    const file = configFile({ speaker: 'cilium', cilium: { outputDir: path.join(k.dir, 'cilium') } });
    expect(await runCli(['bgp-sync', '--config', file, '--render'])).toBe(0);
    expect(out.join('')).toContain('\\"denied\\":[\\"10.96.0.0/12\\",\\"10.244.0.0/24\\",\\"192.0.2.11/32\\"]');
    out.length = 0;
    k.api.remove('servicecidrs', undefined, 'kubernetes');
    expect(await runCli(['bgp-sync', '--config', file, '--render'])).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('')).toMatch(/^podlegs bgp-sync: bgp.serviceCidrs is not set and the cluster does not tell: looked at ServiceCIDR spec.cidrs \(GET \/apis\/networking.k8s.io\/v1\/servicecidrs: 0 objects, 0 CIDRs\); set bgp.serviceCidrs in the bgp section\n$/);
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
});
