import { atLeast, checkVersion, fromInternal, parsePrevResult, toInternal, SUPPORTED_VERSIONS, CniVersion } from '../../plugin/cni/versions';
import { CniError } from '../../plugin/cni/errors';
import * as fs from 'fs';
import * as path from 'path';

const ciliumResult = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/cilium-cni-add-result.json'), 'utf8'));

describe('cniVersion handling', () => {
  it.each(SUPPORTED_VERSIONS.map((v) => [v]))('accepts %s', (v) => expect(checkVersion(v)).toBe(v));
  it.each([['0.2.0', 1], ['1.2.0', 1], ['2.0.0', 1], ['', 1], [1.0, 7], [undefined, 7]])('refuses %p with code %d', (v, code) => {
    let err: unknown;
    try { checkVersion(v); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(code);
  });
  it('orders versions numerically', () => {
    expect(atLeast('1.1.0', '1.0.0')).toBe(true);
    expect(atLeast('0.4.0', '1.0.0')).toBe(false);
    expect(atLeast('0.3.1', '0.4.0')).toBe(false);
    expect(atLeast('1.0.0', '1.0.0')).toBe(true);
  });
});

describe('result conversion', () => {
  it('reads a 0.3.1 Cilium result and drops the per-IP version', () => {
    const r = toInternal(ciliumResult, 'prevResult');
    expect(r.ips?.every((ip) => ip.version === undefined)).toBe(true);
    expect(r.cniVersion).toBeUndefined();
    expect(r.interfaces?.map((i) => i.name)).toEqual(ciliumResult.interfaces.map((i: { name: string }) => i.name));
  });

  const table: [CniVersion, boolean, boolean][] = [
    ['0.3.1', true, false], ['0.4.0', true, false], ['1.0.0', false, false], ['1.1.0', false, true],
  ];
  it.each(table)('renders %s (ip version: %s, interface mtu: %s)', (v, hasVersion, hasMtu) => {
    const internal = toInternal(ciliumResult, 'prevResult');
    internal.interfaces!.push({ name: 'net1', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: '/var/run/netns/x' });
    internal.ips!.push({ address: '2001:db8::5/64', interface: internal.interfaces!.length - 1 });
    const out = fromInternal(internal, v);
    expect(out.cniVersion).toBe(v);
    expect(out.ips!.every((ip) => (ip.version !== undefined) === hasVersion)).toBe(true);
    if (hasVersion) expect(out.ips!.map((ip) => ip.version)).toEqual(['4', '6']);
    expect(out.interfaces!.find((i) => i.name === 'net1')!.mtu !== undefined).toBe(hasMtu);
    expect(out.dns).toBeDefined();
    // Everything of the previous result survives unchanged, in order.
    expect(out.interfaces!.slice(0, 2)).toEqual(ciliumResult.interfaces);
    expect(out.routes).toEqual(ciliumResult.routes);
  });

  it('round-trips every version pair without losing fields', () => {
    for (const a of SUPPORTED_VERSIONS) for (const b of SUPPORTED_VERSIONS) {
      const once = fromInternal(toInternal(ciliumResult, 'x'), a);
      const twice = fromInternal(toInternal(once, 'x'), b);
      expect(toInternal(twice, 'x')).toEqual(toInternal(ciliumResult, 'x'));
    }
  });

  it.each([
    [[], 'must be an object'], ['x', 'must be an object'], [{ ips: {} }, 'not a list'], [{ ips: [{}] }, 'without address'], [{ interfaces: [{ mac: 'x' }] }, 'without name'],
    [{ ips: [{ address: '10.0.1.23' }] }, 'ips[0].address "10.0.1.23" is not an address with prefix length'],
    [{ ips: [{ address: 'banana/24' }] }, 'ips[0].address'],
    [{ ips: [{ address: '10.1/24' }] }, 'ips[0].address'], // ipaddr.js would read 10.0.0.1; Go's ParseCIDR refuses it
    [{ ips: [{ address: 24 }] }, 'ips[0].address must be a non-empty string'],
    [{ ips: [{ address: '10.0.1.23/32', gateway: '10.0.1' }] }, 'ips[0].gateway "10.0.1" is not an IP address'],
    [{ ips: [{ address: '10.0.1.23/32', interface: '1' }] }, 'ips[0].interface must be an integer'],
    [{ ips: [{ address: '10.0.1.23/32', interface: 1.5 }] }, 'ips[0].interface must be an integer'],
    [{ ips: [{ address: '10.0.1.23/32', interface: -1 }] }, 'ips[0].interface must be an integer'],
    [{ routes: [{ dst: 'default' }] }, 'routes[0].dst "default" is not an address with prefix length'],
    [{ routes: [{ gw: '10.0.1.1' }] }, 'routes[0].dst must be a non-empty string'],
    [{ routes: [{ dst: '0.0.0.0/0', gw: 'router' }] }, 'routes[0].gw "router" is not an IP address'],
  ])('rejects malformed prevResult %p with code 6', (bad, msg) => {
    let err: unknown;
    try { toInternal(bad, 'prevResult'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).message).toContain(msg);
    expect((err as CniError).code).toBe(6);
  });

  it('accepts what libcni decodes: IPv4, IPv6, IPv4-mapped, host routes', () => {
    const r = { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.1.23/32', gateway: '10.0.1.250', interface: 0 }, { address: '2001:db8::5/128', gateway: 'fe80::1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.1.250' }, { dst: '::ffff:192.0.2.0/120' }, { dst: '::/0' }] };
    expect(parsePrevResult(r)).toEqual(r);
  });

  it.each([
    [{ interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.1.23/32', interface: 1 }] }, 'interface 1 is not an index into prevResult.interfaces (1 entries)'],
    [{ ips: [{ address: '10.0.1.23/32', interface: 0 }] }, 'interface 0 is not an index into prevResult.interfaces (0 entries)'],
  ])('refuses a prevResult IP pointing past its interfaces %p with code 6', (bad, msg) => {
    expect(() => parsePrevResult(bad)).toThrow(msg);
    try { parsePrevResult(bad); } catch (e) { expect((e as CniError).code).toBe(6); }
  });

  it('Cilium\'s result is a valid prevResult', () => {
    expect(parsePrevResult(ciliumResult)?.ips?.[0].interface).toBe(1);
  });
});
