import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';

const base = {
  cniVersion: '1.0.0', name: 'lab', type: 'podlegs',
  networks: { 'vrrp-a': { vni: 100 }, 'nf-b': { vni: 200, mtu: 1400, ipam: { type: 'host-local', subnet: '10.30.0.0/24' } } },
  legs: [{ network: 'vrrp-a', interface: 'net1', ips: ['10.100.0.11/24'] }, { network: 'nf-b', interface: 'net2', mac: '02:AA:bb:cc:dd:01' }],
};
const load = (c: unknown): ReturnType<typeof loadConf> => loadConf(JSON.stringify(c));
const codeOf = (c: unknown): number | undefined => {
  try { load(c); } catch (e) { if (e instanceof CniError) return e.code; throw e; }
  return undefined;
};

describe('loadConf', () => {
  it('fills the documented defaults', () => {
    const c = load(base);
    expect(c.underlay).toEqual({ interface: 'auto', vtep: 'auto', port: 4789, mtu: 'auto' });
    expect(c.stateDir).toBe('/var/lib/podlegs');
    expect(c.registry).toEqual({ type: 'file', path: '/var/lib/podlegs/registry' });
    expect(c.log.level).toBe('info');
  });

  it('keeps networks, legs, IPAM and normalises MACs', () => {
    const c = load(base);
    expect(c.networks.get('nf-b')).toEqual({ name: 'nf-b', vni: 200, mtu: 1400, ipam: { type: 'host-local', subnet: '10.30.0.0/24' } });
    expect(c.legs[1]).toEqual({ network: 'nf-b', interface: 'net2', mac: '02:aa:bb:cc:dd:01' });
  });

  it('parses prevResult and GC attachments', () => {
    const c = load({ ...base, prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [] }, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] });
    expect(c.prevResult?.interfaces).toEqual([{ name: 'eth0' }]);
    expect(c.validAttachments).toEqual([{ containerID: 'a', ifname: 'eth0' }]);
  });

  it('allows a registry directory and explicit underlay', () => {
    const c = load({ ...base, underlay: { interface: 'ul0', vtep: '192.0.2.11', port: 4790, mtu: 9000 }, registry: { type: 'file', path: '/srv/reg' } });
    expect(c.underlay).toEqual({ interface: 'ul0', vtep: '192.0.2.11', port: 4790, mtu: 9000 });
    expect(c.registry.path).toBe('/srv/reg');
  });

  it.each<[string, unknown, number]>([
    ['VNI 0', { ...base, networks: { a: { vni: 0 } }, legs: [] }, 7],
    ['VNI too large', { ...base, networks: { a: { vni: 16777216 } }, legs: [] }, 7],
    ['duplicate VNI', { ...base, networks: { a: { vni: 5 }, b: { vni: 5 } }, legs: [] }, 7],
    ['unknown network', { ...base, legs: [{ network: 'nope', interface: 'net1' }] }, 7],
    ['eth name', { ...base, legs: [{ network: 'vrrp-a', interface: 'eth1' }] }, 7],
    ['MTU above explicit underlay', { ...base, underlay: { mtu: 1400 }, networks: { a: { vni: 1, mtu: 1400 } }, legs: [] }, 7],
    ['Cilium port', { ...base, underlay: { port: 8472 } }, 7],
    ['typo field', { ...base, underlay: { prot: 1 } }, 2],
    ['kubernetes registry without a kubernetes section', { ...base, registry: { type: 'kubernetes' } }, 7],
    ['loopback VTEP', { ...base, underlay: { vtep: '127.0.0.1' } }, 7],
    ['multicast VTEP', { ...base, underlay: { vtep: '239.1.1.1' } }, 7],
  ])('refuses %s', (_what, conf, code) => expect(codeOf(conf)).toBe(code));
});

describe('modes', () => {
  it('is kubernetes when a kubernetes section is present and no legs are listed', () => {
    const c = loadConf(JSON.stringify({ cniVersion: '0.3.1', name: 'cilium', type: 'podlegs', kubernetes: { globalNamespaces: ['nf-shared'] } }));
    expect(c.mode).toBe('kubernetes');
    expect(c.registry.type).toBe('kubernetes');
    expect(c.kubernetes).toEqual({ kubeconfig: '/etc/cni/net.d/podlegs.d/podlegs.kubeconfig', globalNamespaces: ['nf-shared'], multus: false });
  });
  it('is delegate for a NAD config handed over by Multus: one leg named CNI_IFNAME', () => {
    const c = loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, mtu: 1400, stateDir: '/tmp/x' }), 'net1');
    expect(c.mode).toBe('delegate');
    expect(c.networks.get('vrrp-a')).toEqual({ name: 'vrrp-a', vni: 100, mtu: 1400 });
    expect(c.legs).toEqual([{ network: 'vrrp-a', interface: 'net1' }]);
    expect(c.stateDir).toBe('/tmp/x');
  });
  it('refuses a delegate config whose CNI_IFNAME starts with eth', () => {
    expect(codeOf({ cniVersion: '1.0.0', name: 'a', type: 'podlegs', vni: 1 })).toBe(7); // no ifname at all
    expect(() => loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'podlegs', vni: 1 }), 'eth1')).toThrow(/eth/);
  });
});
