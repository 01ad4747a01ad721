// One rule per value kind: every parser that reads a MAC, an AS number or a host:port
// answers the same for the same value (before, 00:00:00:00:00:00 passed the Multus
// selection parser and ASN 23456/65535 passed kubernetes.nodeAsn and the node label).
import { loadConf } from '../../plugin/cni/config';
import { parseSelections } from '../../plugin/k8s/selection';
import { parseMember } from '../../overlay/registry/member';
import { checkAsn } from '../../plugin/cni/bgp-conf';
import { parseBgpSyncConf } from '../../plugin/bgp/config';
import { parseAgentConf } from '../../overlay/agent/config';
import { asnProblem, macProblem, parseHostPort } from '../../overlay/values';

const legConf = (mac: string): string => JSON.stringify({
  cniVersion: '1.0.0', name: 'x', type: 'podlegs', underlay: { interface: 'ul0' },
  networks: { a: { vni: 100 } }, legs: [{ network: 'a', interface: 'net1', mac }],
});
const k8sConf = (nodeAsn: number): string => JSON.stringify({ cniVersion: '1.0.0', name: 'x', type: 'podlegs', kubernetes: { kubeconfig: '/etc/k', nodeAsn } });
const MEMBER = { vni: 100, vtep: '192.0.2.11', owner: 'o' };

describe('MAC: one rule for config legs, Multus selections and registry members', () => {
  const parsers: [string, (mac: string) => boolean][] = [
    ['config leg mac', (mac) => { try { loadConf(legConf(mac)); return true; } catch { return false; } }],
    ['selection mac', (mac) => { try { parseSelections(JSON.stringify([{ name: 'a', mac }])); return true; } catch { return false; } }],
    ['registry member mac', (mac) => typeof parseMember({ ...MEMBER, mac }) !== 'string'],
  ];
  it.each([
    ['02:00:00:00:00:01', true], ['0A:1b:2c:3d:4e:5f'.toLowerCase(), true],
    ['00:00:00:00:00:00', false], ['01:00:5e:00:00:01', false], ['ff:ff:ff:ff:ff:ff', false], ['02:00:00:00:00', false], ['02-00-00-00-00-01', false],
  ])('%s → accepted %p by every parser', (mac, ok) => {
    expect(macProblem(mac) === undefined).toBe(ok);
    for (const [name, accepts] of parsers) expect({ parser: name, accepted: accepts(mac) }).toEqual({ parser: name, accepted: ok });
  });
});

describe('AS number: one rule for kubernetes.nodeAsn, bgp.localAsn and the bgp-sync peerAsn', () => {
  const bgpSync = (peerAsn: number): boolean => {
    try {
      parseBgpSyncConf({ localAsn: 65012, peerAsn, podCidrs: ['10.0.0.0/16'], serviceCidrs: ['10.96.0.0/12'] }, { nodeName: 'n1' });
      return true;
    } catch (e) {
      return !/AS number/.test((e as Error).message);
    }
  };
  const parsers: [string, (n: number) => boolean][] = [
    ['kubernetes.nodeAsn', (n) => { try { loadConf(k8sConf(n)); return true; } catch { return false; } }],
    ['bgp.localAsn', (n) => { try { checkAsn(n, 'bgp.localAsn'); return true; } catch { return false; } }],
    ['bgp-sync peerAsn', bgpSync],
  ];
  it.each([[1, true], [65012, true], [4200000000, true], [4294967294, true], [0, false], [23456, false], [65535, false], [4294967295, false], [1.5, false]])(
    'ASN %p → accepted %p by every parser', (n, ok) => {
      expect(asnProblem(n) === undefined).toBe(ok);
      for (const [name, accepts] of parsers) expect({ parser: name, accepted: accepts(n) }).toEqual({ parser: name, accepted: ok });
    });
});

describe('host:port: one rule for agent.metricsAddress and bgp.api', () => {
  const base = { localAsn: 65012, peerAsn: 65100, podCidrs: ['10.0.0.0/16'], serviceCidrs: ['10.96.0.0/12'] };
  it.each([['127.0.0.1:9750', true], ['[::1]:1', true], ['localhost', false], ['1.2.3.4:70000', false], ['[nothex]:80', false]])('%s → accepted %p', (addr, ok) => {
    expect(typeof parseHostPort(addr) !== 'string').toBe(ok);
    const agent = (): unknown => parseAgentConf({ metricsAddress: addr });
    const bgp = (): unknown => parseBgpSyncConf({ ...base, api: addr }, { nodeName: 'n1' });
    if (ok) { expect(agent).not.toThrow(); expect(bgp).not.toThrow(); } else { expect(agent).toThrow(/host:port|IPv6/); expect(bgp).toThrow(/host:port|IPv6/); }
  });
});
