// The VXLAN overhead rule: a leg's MTU limit follows the family of the node's VTEP.
import { legMtuLimit, mtuLimit, vtepFamily, vxlanOverhead } from '../../overlay/underlay';
import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';
import { legMtu } from '../../plugin/cni/mtu';

const conf = (underlay: Record<string, unknown>, mtu: number): unknown => ({
  cniVersion: '1.1.0', name: 'lab', type: 'podlegs', underlay,
  networks: { a: { vni: 100, mtu } }, legs: [{ network: 'a', interface: 'net1' }],
});
const refusal = (c: unknown): { code: number; msg: string } | undefined => {
  try { loadConf(JSON.stringify(c)); } catch (e) { if (e instanceof CniError) return { code: e.code, msg: e.message }; throw e; }
  return undefined;
};

describe('VXLAN overhead by VTEP family', () => {
  it('is 50 over IPv4 (outer IPv4 20 + UDP 8 + VXLAN 8 + Ethernet 14) and 70 over IPv6 (outer IPv6 40)', () => {
    expect(vxlanOverhead(4)).toBe(50);
    expect(vxlanOverhead(6)).toBe(70);
  });

  it('takes the family from the VTEP address', () => {
    expect(vtepFamily('192.0.2.11')).toBe(4);
    expect(vtepFamily('2001:db8::11')).toBe(6);
    expect(vtepFamily('2001:db8:0:1::a')).toBe(6);
  });

  it('gives the leg limit of an underlay: MTU - 50 for an IPv4 VTEP, MTU - 70 for an IPv6 one', () => {
    expect(legMtuLimit({ mtu: 1500, vtep: '192.0.2.11' })).toEqual({ max: 1450, why: 'underlay MTU 1500 - 50 for VXLAN over IPv4' });
    expect(legMtuLimit({ mtu: 1500, vtep: '2001:db8::11' })).toEqual({ max: 1430, why: 'underlay MTU 1500 - 70 for VXLAN over IPv6' });
    expect(legMtuLimit({ mtu: 9000, vtep: '2001:db8::11' }).max).toBe(8930);
  });

  it('a leg without an MTU gets the limit; one above it is refused with code 7 and the figure', () => {
    expect(legMtu('network a', undefined, mtuLimit(1500, 6))).toBe(1430);
    expect(legMtu('network a', 1430, mtuLimit(1500, 6))).toBe(1430);
    expect(() => legMtu('network a', 1431, mtuLimit(1500, 6))).toThrow(
      expect.objectContaining({ code: 7, message: 'network a asks for MTU 1431, but the underlay allows at most 1430 (underlay MTU 1500 - 70 for VXLAN over IPv6)' }));
  });
});

describe('loadConf with an explicit underlay MTU', () => {
  it('IPv6 VTEP: 1430 fits a 1500 underlay, 1431 is refused with code 7 naming the 70', () => {
    expect(refusal(conf({ mtu: 1500, vtep: '2001:db8::11' }, 1430))).toBeUndefined();
    const r = refusal(conf({ mtu: 1500, vtep: '2001:db8::11' }, 1431));
    expect(r).toEqual({ code: 7, msg: expect.stringContaining('at most 1430 (underlay MTU 1500 - 70 for VXLAN over IPv6)') });
  });

  it('IPv4 VTEP: 1450 fits, 1451 is refused naming the 50', () => {
    expect(refusal(conf({ mtu: 1500, vtep: '192.0.2.11' }, 1450))).toBeUndefined();
    expect(refusal(conf({ mtu: 1500, vtep: '192.0.2.11' }, 1451))).toEqual({ code: 7, msg: expect.stringContaining('underlay MTU 1500 - 50 for VXLAN over IPv4') });
  });

  it('VTEP auto: the family is not known yet, only what IPv4 cannot carry is refused here (ADD checks the rest)', () => {
    expect(refusal(conf({ mtu: 1500 }, 1440))).toBeUndefined();
    expect(refusal(conf({ mtu: 1500 }, 1451))?.code).toBe(7);
  });

  it('an IPv6 VTEP is kept in the canonical form the kernel reports', () => {
    const c = loadConf(JSON.stringify(conf({ vtep: '2001:DB8:0:0::0:11' }, 1400)));
    expect(c.underlay.vtep).toBe('2001:db8::11');
  });
});
