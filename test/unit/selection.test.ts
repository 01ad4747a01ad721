import { parseSelections } from '../../plugin/k8s/selection';
import { CniError } from '../../plugin/cni/errors';

const codeOf = (a: string): number | undefined => {
  try { parseSelections(a); } catch (e) { return (e as CniError).code; }
  return undefined;
};

describe('NPWG selection annotation', () => {
  it('is empty when absent or blank', () => {
    expect(parseSelections(undefined)).toEqual([]);
    expect(parseSelections('  ')).toEqual([]);
  });
  it('parses the comma form with namespace and interface', () => {
    expect(parseSelections('vrrp-a, nf/nf-b@net5,other@net2')).toEqual([
      { name: 'vrrp-a' }, { name: 'nf-b', namespace: 'nf', interface: 'net5' }, { name: 'other', interface: 'net2' },
    ]);
  });
  it('parses the JSON form with ips, mac and cni-args', () => {
    expect(parseSelections(JSON.stringify([{ name: 'vrrp-a', namespace: 'nf', interface: 'net1', ips: ['192.0.2.5/24'], mac: '02:AA:00:00:00:01', 'cni-args': { x: 1 } }]))).toEqual([
      { name: 'vrrp-a', namespace: 'nf', interface: 'net1', ips: ['192.0.2.5/24'], mac: '02:aa:00:00:00:01', cniArgs: { x: 1 } },
    ]);
  });
  it.each<[string, number]>([
    ['[{"name":"a","default-route":["10.0.0.1"]}]', 2],
    ['[{"name":"a","bandwidth":{}}]', 2],
    ['[{"name":"a","bogus":1}]', 2],
    ['[{"name":"a"', 7],
    ['{"name":"a"}', 7],
    ['[{"name":5}]', 7],
    ['[{"name":"a","ips":["192.0.2.5"]}]', 7],
    ['[{"name":"a","mac":"01:00:5e:00:00:01"}]', 7],
    ['[{"name":"a","interface":"eth1"}]', 7],
    ['[{"name":"a","interface":"net1"},{"name":"b","interface":"net1"}]', 7],
    ['a/b/c', 7],
    ['Upper', 7],
    ['a@', 7],
    ['ns_x/a', 7],
    ['a@this-name-is-too-long', 7],
    ['a,,b', 7],
  ])('refuses %s with code %d', (a, code) => expect(codeOf(a)).toBe(code));
});
