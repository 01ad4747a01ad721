import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConf, loadTeardownConf } from '../../plugin/cni/config';
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
    expect(c.registry).toEqual({ type: 'file', path: '/srv/reg' });
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

describe('network names: what the CNI spec accepts', () => {
  const trunkConf = {
    cniVersion: '1.1.0', name: 'Lab.1', type: 'podlegs',
    networks: { A: { vni: 100 }, 'net_B.2': { vni: 200 }, T: { trunk: { vlans: [{ vid: 10, network: 'A' }], nativeNetwork: 'net_B.2' } } },
    legs: [{ network: 'T', interface: 'net1' }],
  };
  it('accepts upper case, "_" and "." (libcni: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$), also for trunks', () => {
    const c = load(trunkConf);
    expect([...c.networks.keys()]).toEqual(['A', 'net_B.2']);
    expect(c.trunks?.get('T')).toEqual({ name: 'T', vlans: [{ vid: 10, network: 'A' }], nativeNetwork: 'net_B.2' });
    expect(c.legs).toEqual([{ network: 'T', interface: 'net1', trunk: true }]);
    expect(c.name).toBe('Lab.1');
  });
  it.each(['-a', '.a', '_a', 'a b', 'a/b', 'ä', 'a:b', 'x'.repeat(254)])('refuses network name %p (code 7)', (n) => {
    expect(codeOf({ ...base, networks: { [n]: { vni: 9 } }, legs: [] })).toBe(7);
  });
  it.each(['', '-lab', 'my net', 'a/b'])('refuses config name %p (code 7), as libcni does', (n) => {
    expect(codeOf({ ...base, name: n })).toBe(7);
  });
});

describe('registry', () => {
  it('Kubernetes mode has no file registry: no path, not even an empty one', () => {
    const k8s = { cniVersion: '1.1.0', name: 'cilium', type: 'podlegs', kubernetes: {} };
    expect(load(k8s).registry).toEqual({ type: 'kubernetes' });
    expect(load({ ...k8s, registry: { type: 'kubernetes' } }).registry).toEqual({ type: 'kubernetes' });
    expect(load({ ...k8s, registry: { type: 'file' }, stateDir: '/srv/pl' }).registry).toEqual({ type: 'file', path: '/srv/pl/registry' });
  });
});

describe('loadTeardownConf (DEL)', () => {
  const valid = { cniVersion: '1.0.0', stateDir: '/srv/pl', log: { level: 'debug' } };
  it('reads only cniVersion, stateDir and log: the rest may be anything', () => {
    const broken = { ...valid, name: 'bad name', type: 'bridge', networks: { 'a b': { vni: 0 } }, legs: 'x', underlay: { mtu: 1 }, kubernetes: 7, registry: { type: 'etcd' }, prevResult: 'x' };
    expect(loadTeardownConf(JSON.stringify(broken))).toEqual({ cniVersion: '1.0.0', stateDir: '/srv/pl', log: { level: 'debug' } });
  });
  it.each<[string, unknown, number]>([
    ['no cniVersion', { ...valid, cniVersion: undefined }, 7],
    ['cniVersion 9.9.9', { ...valid, cniVersion: '9.9.9' }, 1],
    ['relative stateDir', { ...valid, stateDir: 'state' }, 7],
    ['bad log level', { ...valid, log: { level: 'loud' } }, 7],
    ['unknown log field', { ...valid, log: { lvl: 'info' } }, 2],
  ])('still refuses what DEL needs: %s', (_w, conf, code) => {
    let got: number | undefined;
    try { loadTeardownConf(JSON.stringify(conf)); } catch (e) { got = (e as CniError).code; }
    expect(got).toBe(code);
  });
  it('refuses stdin that is not one JSON object (code 6)', () => {
    expect(() => loadTeardownConf('{"cniVersion":')).toThrow(/not valid JSON/);
  });
  it('takes stateDir and log of a Multus delegate config from the node config', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-node-'));
    const file = path.join(dir, 'node.json');
    fs.writeFileSync(file, JSON.stringify({ stateDir: '/srv/node', log: { level: 'warn' } }));
    process.env.PODLEGS_NODE_CONFIG = file;
    try {
      expect(loadTeardownConf(JSON.stringify({ cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100 }))).toEqual({ cniVersion: '1.0.0', stateDir: '/srv/node', log: { level: 'warn' } });
    } finally {
      delete process.env.PODLEGS_NODE_CONFIG;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
