import * as fs from 'fs';
import * as path from 'path';
import { appendLegs } from '../../plugin/cni/result';
import { toInternal, fromInternal } from '../../plugin/cni/versions';

const cilium = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/cilium-cni-add-result.json'), 'utf8'));

describe('appendLegs', () => {
  const prev = toInternal(cilium, 'prevResult');
  const legs = [
    { ifname: 'net1', mac: '02:00:00:00:01:01', mtu: 1450, ips: [{ address: '192.0.2.50/24' }] },
    { ifname: 'net2', mac: '02:00:00:00:01:02', mtu: 1400, ips: [{ address: '10.30.0.2/24', gateway: '10.30.0.1', interface: 7 }] },
  ];
  const r = appendLegs(prev, legs, [{ dst: '10.31.0.0/16', gw: '10.30.0.1' }], '/var/run/netns/pod');

  it('leaves every entry of prevResult as it was, first', () => {
    expect(r.interfaces!.slice(0, 2)).toEqual(prev.interfaces);
    expect(r.ips![0]).toEqual(prev.ips![0]);
    expect(r.routes!.slice(0, 2)).toEqual(prev.routes);
    expect(prev.interfaces).toHaveLength(2); // input not mutated
  });

  it('appends the legs with sandbox and points IPs at their interface index', () => {
    expect(r.interfaces![2]).toEqual({ name: 'net1', mac: '02:00:00:00:01:01', mtu: 1450, sandbox: '/var/run/netns/pod' });
    expect(r.interfaces![3].name).toBe('net2');
    expect(r.ips!.slice(1)).toEqual([
      { address: '192.0.2.50/24', interface: 2 },
      { address: '10.30.0.2/24', gateway: '10.30.0.1', interface: 3 },
    ]);
    expect(r.routes![2]).toEqual({ dst: '10.31.0.0/16', gw: '10.30.0.1' });
  });

  it('works standalone (no prevResult)', () => {
    const s = appendLegs(undefined, legs.slice(0, 1), [], '/n');
    expect(s.interfaces).toHaveLength(1);
    expect(s.ips).toEqual([{ address: '192.0.2.50/24', interface: 0 }]);
    expect(s.routes).toBeUndefined();
  });

  it('renders in the 0.3.1 shape Cilium used, eth0 unchanged', () => {
    const out = fromInternal(r, '0.3.1');
    expect(out.interfaces![1]).toEqual(cilium.interfaces[1]);
    expect(out.ips![0]).toEqual(cilium.ips[0]);
    expect(out.ips![1].version).toBe('4');
  });
});
