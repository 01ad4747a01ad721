// Trunk networks in the plugin config, trunk host names, and the VLAN filter program.
import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';
import { legVnis, planTrunkLeg } from '../../plugin/cni/trunk';
import { mtuLimit } from '../../overlay/underlay';
import { hostVethName, isPodlegsName, trunkVlanName, probeName, isProbeName } from '../../overlay/names';
import { describeTrunkFilter, trunkFilterProgram, TC_ACT_OK, TC_ACT_SHOT } from '../../overlay/trunk-filter';
import type { CniEnv } from '../../plugin/cni/env';

const base = {
  cniVersion: '1.1.0', name: 'lab', type: 'podlegs',
  networks: {
    'vrrp-a': { vni: 100 },
    'nf-b': { vni: 200, mtu: 1400 },
    mgmt: { vni: 300, ipam: { type: 'host-local', subnet: '10.30.0.0/24' } },
    trunk1: { trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 20, network: 'nf-b' }], nativeNetwork: 'mgmt' } },
  } as Record<string, unknown>,
  legs: [{ network: 'trunk1', interface: 'net1' }] as Record<string, unknown>[],
};
const load = (c: unknown): ReturnType<typeof loadConf> => loadConf(JSON.stringify(c));
const err = (c: unknown): { code: number; msg: string } | undefined => {
  try { load(c); } catch (e) { if (e instanceof CniError) return { code: e.code, msg: e.message }; throw e; }
  return undefined;
};
const withNets = (extra: Record<string, unknown>, legs = base.legs): unknown => ({ ...base, networks: { ...base.networks, ...extra }, legs });
const trunk = (t: unknown, mtu?: number): unknown => withNets({ trunk1: { trunk: t, ...(mtu ? { mtu } : {}) } });

describe('trunk networks in the config', () => {
  it('parses a trunk network and marks the leg as a trunk leg', () => {
    const c = load(base);
    expect(c.trunks?.get('trunk1')).toEqual({ name: 'trunk1', vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 20, network: 'nf-b' }], nativeNetwork: 'mgmt' });
    expect(c.networks.has('trunk1')).toBe(false);
    expect([...c.networks.keys()]).toEqual(['vrrp-a', 'nf-b', 'mgmt']);
    expect(c.legs).toEqual([{ network: 'trunk1', interface: 'net1', trunk: true }]);
  });

  it('allows a trunk without native network, beside access legs on other networks', () => {
    const c = load(withNets({ trunk1: { trunk: { vlans: [{ vid: 4094, network: 'vrrp-a' }] } } },
      [{ network: 'trunk1', interface: 'net1' }, { network: 'nf-b', interface: 'net2' }]));
    expect(c.trunks?.get('trunk1')?.nativeNetwork).toBeUndefined();
    expect(c.legs.map((l) => !!l.trunk)).toEqual([true, false]);
  });

  it('a config without trunks has no trunks map', () => {
    expect(load({ ...base, networks: { a: { vni: 1 } }, legs: [] }).trunks).toBeUndefined();
  });

  it.each<[string, unknown, number, RegExp]>([
    ['VID 0', trunk({ vlans: [{ vid: 0, network: 'vrrp-a' }] }), 7, /vid must be an integer from 1 to 4094/],
    ['VID 4095', trunk({ vlans: [{ vid: 4095, network: 'vrrp-a' }] }), 7, /1 to 4094/],
    ['VID not a number', trunk({ vlans: [{ vid: '10', network: 'vrrp-a' }] }), 7, /vid/],
    ['empty vlans', trunk({ vlans: [] }), 7, /non-empty list/],
    ['vlans not a list', trunk({ vlans: { 10: 'vrrp-a' } }), 7, /non-empty list/],
    ['duplicate VID', trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 10, network: 'nf-b' }] }), 7, /VLAN 10 is listed twice/],
    ['one network on two VIDs', trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 11, network: 'vrrp-a' }] }), 7, /bridge two VLANs/],
    ['unknown VLAN network', trunk({ vlans: [{ vid: 10, network: 'nope' }] }), 7, /"nope" is not defined/],
    ['unknown native network', trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }], nativeNetwork: 'nope' }), 7, /nativeNetwork "nope" is not defined/],
    ['native network also a VLAN', trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }], nativeNetwork: 'vrrp-a' }), 7, /also VLAN 10/],
    ['trunk of a trunk', withNets({ t2: { trunk: { vlans: [{ vid: 5, network: 'trunk1' }] } } }), 7, /is a trunk network/],
    ['vni and trunk together', withNets({ trunk1: { vni: 9, trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }] } } }), 7, /both "vni" and "trunk"/],
    ['unknown trunk field', trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }], native: 'mgmt' }), 2, /trunk\.native is not a known field/],
    ['unknown VLAN field', trunk({ vlans: [{ vid: 10, network: 'vrrp-a', pcp: 3 }] }), 2, /pcp/],
    ['ipam on a trunk network', withNets({ trunk1: { trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }] }, ipam: { type: 'static' } } }), 2, /ipam is not a known field/],
    ['two trunk legs', withNets({ t2: { trunk: { vlans: [{ vid: 5, network: 'vrrp-a' }] } }, trunk1: { trunk: { vlans: [{ vid: 10, network: 'nf-b' }] } } },
      [{ network: 'trunk1', interface: 'net1' }, { network: 't2', interface: 'net2' }]), 7, /at most one trunk leg/],
    ['access leg on a trunk VLAN network', withNets({}, [{ network: 'trunk1', interface: 'net1' }, { network: 'nf-b', interface: 'net2' }]), 7, /"nf-b" is attached twice/],
    ['access leg on the native network', withNets({}, [{ network: 'mgmt', interface: 'net2' }, { network: 'trunk1', interface: 'net1' }]), 7, /"mgmt" is attached twice/],
    ['addresses on a trunk without native', withNets({ trunk1: { trunk: { vlans: [{ vid: 10, network: 'vrrp-a' }] } } },
      [{ network: 'trunk1', interface: 'net1', ips: ['10.0.0.1/24'] }]), 7, /no nativeNetwork/],
    ['trunk MTU above the underlay', { ...(trunk({ vlans: [{ vid: 10, network: 'vrrp-a' }] }, 1500) as object), underlay: { mtu: 1500 } }, 7, /the underlay allows at most 1450 \(underlay MTU 1500 - 50 for VXLAN over IPv4\)/],
    ['eth* name for the trunk', withNets({}, [{ network: 'trunk1', interface: 'eth1' }]), 7, /primary CNI/],
  ])('refuses %s', (_what, conf, code, msg) => {
    const e = err(conf);
    expect(e?.code).toBe(code);
    expect(e?.msg).toMatch(msg);
  });
});

describe('trunk leg plan', () => {
  const env = { containerId: 'c0ffee', ifname: 'eth0', netns: '/run/netns/x', path: [], command: 'ADD', args: new Map() } as unknown as CniEnv;

  it('names, VNIs, MTUs and the native network', () => {
    const c = load({ ...base, legs: [{ network: 'trunk1', interface: 'net1', mac: '02:00:00:00:00:01' }] });
    const leg = planTrunkLeg(c, env, c.legs[0], mtuLimit(1500, 4));
    const hostIf = hostVethName('c0ffee', 'eth0', 'net1');
    expect(leg).toMatchObject({ network: 'trunk1', vni: 300, ifname: 'net1', hostIf, mtu: 1450, ips: [], mac: '02:00:00:00:00:01', ipam: { type: 'host-local' } });
    expect(leg.trunk).toEqual({
      vlans: [
        { vid: 10, network: 'vrrp-a', vni: 100, hostIf: trunkVlanName(hostIf, 10), mtu: 1450 },
        { vid: 20, network: 'nf-b', vni: 200, hostIf: trunkVlanName(hostIf, 20), mtu: 1400 },
      ],
      native: { network: 'mgmt', vni: 300 },
    });
    expect(legVnis(leg)).toEqual([100, 200, 300]);
  });

  it('refuses a network MTU above the underlay once the underlay is known', () => {
    const c = load(base);
    expect(() => planTrunkLeg(c, env, c.legs[0], mtuLimit(1420, 6))).toThrow(/nf-b asks for MTU 1400, but the underlay allows at most 1350 \(underlay MTU 1420 - 70 for VXLAN over IPv6\)/);
  });
});

describe('trunk host names', () => {
  it('fit IFNAMSIZ and are recognised as podlegs objects', () => {
    const veth = hostVethName('a'.repeat(64), 'eth0', 'net1');
    for (const vid of [1, 10, 4094]) {
      const n = trunkVlanName(veth, vid);
      expect(n.length).toBeLessThanOrEqual(15);
      expect(n.startsWith(veth.slice(0, 10))).toBe(true);
      expect(isPodlegsName(n)).toBe(true);
    }
    const p = probeName();
    expect(isProbeName(p) && isProbeName(`${p}p`) && isPodlegsName(p)).toBe(true);
    expect(isPodlegsName('plbr100') && isPodlegsName(veth)).toBe(true);
    expect(isPodlegsName('eth0.10')).toBe(false);
  });
});

describe('trunk VLAN filter program', () => {
  it('is classic BPF: untagged, 802.1Q check, one compare and return per VID, final drop', () => {
    const p = trunkFilterProgram([20, 10], true);
    expect(p).toHaveLength(8 + 2 * 2 + 1);
    expect(p[2]).toMatchObject({ code: 0x06, k: TC_ACT_OK }); // untagged → native
    expect(p.slice(8).filter((i) => i.code === 0x15).map((i) => i.k)).toEqual([10, 20]);
    expect(p[p.length - 1]).toMatchObject({ code: 0x06, k: TC_ACT_SHOT });
    expect(trunkFilterProgram([10], false)[2].k).toBe(TC_ACT_SHOT); // no native: untagged dropped
  });

  it('reads back what it lets through, and rejects foreign programs', () => {
    expect(describeTrunkFilter(trunkFilterProgram([30, 10, 20], false))).toEqual({ vids: [10, 20, 30], native: false });
    expect(describeTrunkFilter(trunkFilterProgram([7], true))).toEqual({ vids: [7], native: true });
    const tampered = trunkFilterProgram([10], true);
    tampered[5] = { ...tampered[5], k: 0 };
    expect(describeTrunkFilter(tampered)).toBeUndefined();
    expect(describeTrunkFilter([{ code: 6, jt: 0, jf: 0, k: 0 }])).toBeUndefined();
  });

  /** A tiny classic-BPF interpreter for the instructions the program uses. */
  function run(p: ReturnType<typeof trunkFilterProgram>, frame: { tagged: boolean; tpid?: number; tci?: number }): number {
    let a = 0;
    for (let pc = 0; pc < p.length; pc++) {
      const i = p[pc];
      switch (i.code) {
        case 0x20: a = i.k === 0xfffff030 ? Number(frame.tagged) : i.k === 0xfffff03c ? frame.tpid ?? 0 : i.k === 0xfffff02c ? frame.tci ?? 0 : NaN; break;
        case 0x54: a &= i.k; break;
        case 0x15: pc += a === i.k ? i.jt : i.jf; break;
        case 0x06: return i.k;
        default: throw new Error(`opcode ${i.code}`);
      }
    }
    throw new Error('fell off the end');
  }

  it('verdicts: listed tags pass, others and 802.1ad drop, untagged per native', () => {
    const withNative = trunkFilterProgram([10, 20], true);
    const without = trunkFilterProgram([10, 20], false);
    const q = (vid: number, pcp = 0): { tagged: boolean; tpid: number; tci: number } => ({ tagged: true, tpid: 0x8100, tci: (pcp << 13) | vid });
    expect(run(withNative, q(10))).toBe(TC_ACT_OK);
    expect(run(withNative, q(20, 5))).toBe(TC_ACT_OK); // priority bits ignored
    expect(run(withNative, q(30))).toBe(TC_ACT_SHOT);
    expect(run(withNative, q(0))).toBe(TC_ACT_SHOT); // priority-tagged
    expect(run(withNative, { tagged: true, tpid: 0x88a8, tci: 10 })).toBe(TC_ACT_SHOT);
    expect(run(withNative, { tagged: false })).toBe(TC_ACT_OK);
    expect(run(without, { tagged: false })).toBe(TC_ACT_SHOT);
    expect(run(without, q(10))).toBe(TC_ACT_OK);
  });
});
