// The leg guard's configuration (network / leg / selection element), its allow-lists, and the
// drop-counter bookkeeping (metric deltas, the rate-limited report). The program's behaviour
// on real frames is tested against the kernel (test/kernel/leg-guard.test.ts, test/lab/leg-guard.test.ts).
import { loadConf } from '../../plugin/cni/config';
import { CniError } from '../../plugin/cni/errors';
import { effectiveGuard, MAX_ALLOWED_ADDRESSES, MAX_ALLOWED_MACS, MAX_VIPS, MAX_VRRP, parseSecurity } from '../../plugin/cni/security-config';
import { parseSelections } from '../../plugin/k8s/selection';
import { eui64LinkLocal, guardProgram, GuardTooLarge, guardRules, isGuardFor, vrrpMac } from '../../overlay/leg-guard';
import { GuardDrops, GuardedDevice } from '../../overlay/agent/guard-drops';
import { AgentMetrics } from '../../overlay/agent/metrics';
import type { Kernel } from '../../overlay/kernel/kernel';

const conf = (networks: object, legs: object[]) => loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'podlegs', networks, legs }));
const failure = (fn: () => unknown): { code: number; msg: string } | undefined => {
  try { fn(); } catch (e) { return { code: (e as CniError).code, msg: (e as Error).message }; }
  return undefined;
};

describe('security settings', () => {
  it('a network enforces; a leg replaces it as a whole; off means no guard', () => {
    const c = conf({ g: { vni: 5, security: { mode: 'enforce', allowedMacs: ['02:00:00:00:00:09'] } } }, [
      { network: 'g', interface: 'net1', security: { mode: 'enforce', vrrp: [{ vrid: 51, vips: ['203.0.113.100'] }] } },
    ]);
    const net = c.networks.get('g')!;
    expect(effectiveGuard(c.legs[0].security, net.security)).toEqual({ vrrp: [{ vrid: 51, vips: ['203.0.113.100'] }], allowedMacs: [], allowedAddresses: [] });
    expect(effectiveGuard(undefined, net.security)).toEqual({ vrrp: [], allowedMacs: ['02:00:00:00:00:09'], allowedAddresses: [] });
    expect(effectiveGuard(parseSecurity({ mode: 'off' }, 's'), net.security)).toBeUndefined();
    expect(effectiveGuard(undefined, undefined)).toBeUndefined();
  });
  it('lower-cases MACs and accepts link-local VIPs (VRRPv3) and prefixes', () => {
    expect(parseSecurity({ mode: 'enforce', vrrp: [{ vrid: 9, vips: ['fe80::1', '2001:db8::9'] }], allowedMacs: ['02:AA:00:00:00:01'], allowedAddresses: ['198.51.100.0/24'] }, 's'))
      .toEqual({ mode: 'enforce', vrrp: [{ vrid: 9, vips: ['fe80::1', '2001:db8::9'] }], allowedMacs: ['02:aa:00:00:00:01'], allowedAddresses: ['198.51.100.0/24'] });
  });
  it('a selection element may carry its own security; a bad one names the element and field', () => {
    const [s] = parseSelections(JSON.stringify([{ name: 'g', security: { mode: 'enforce', vrrp: [{ vrid: 51, vips: ['203.0.113.100'] }] } }]));
    expect(s.security?.vrrp).toEqual([{ vrid: 51, vips: ['203.0.113.100'] }]);
    expect(failure(() => parseSelections(JSON.stringify([{ name: 'g', security: { mode: 'enforce', vrrp: [{ vrid: 300, vips: ['203.0.113.1'] }] } }]))))
      .toEqual({ code: 7, msg: expect.stringMatching(/element 0: security\.vrrp\[0\]\.vrid must be an integer from 1 to 255/) });
  });
  it('a NAD-style network config takes security (delegate mode)', () => {
    const c = loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'g', type: 'podlegs', vni: 7, security: { mode: 'enforce' } }), 'net1', {});
    expect(c.networks.get('g')?.security?.mode).toBe('enforce');
  });
});

describe('allow-lists and program', () => {
  it('own MAC, the virtual MAC per VIP family, allowed MACs; own addresses as host routes, link-locals, VIPs, prefixes', () => {
    const r = guardRules({ mac: '02:00:00:00:00:01', ips: ['10.1.0.5/24'] }, { vrrp: [{ vrid: 51, vips: ['10.1.0.100', '2001:db8::100'] }], allowedMacs: ['02:00:00:00:00:09'], allowedAddresses: ['198.51.100.0/24'] });
    expect(r.macs).toEqual(['02:00:00:00:00:01', '00:00:5e:00:01:33', '00:00:5e:00:02:33', '02:00:00:00:00:09']);
    expect(r.addresses).toEqual(expect.arrayContaining(['10.1.0.5/32', 'fe80::ff:fe00:1/128', '10.1.0.100/32', '2001:db8::100/128', '198.51.100.0/24']));
    expect(vrrpMac(255, 6)).toBe('00:00:5e:00:02:ff');
    expect(eui64LinkLocal('52:54:00:12:34:56')).toBe('fe80::5054:ff:fe12:3456');
  });
  it('is deterministic in its rules (CHECK compares programs) and tells rules apart', () => {
    const a = { macs: ['02:00:00:00:00:02', '02:00:00:00:00:01'], addresses: ['10.0.0.1/32', '2001:db8::1/128'] };
    const b = { macs: ['02:00:00:00:00:01', '02:00:00:00:00:02'], addresses: ['2001:db8::1/128', '10.0.0.1/32'] };
    expect(isGuardFor(guardProgram(a), b)).toBe(true);
    expect(isGuardFor(guardProgram(a), { ...b, addresses: ['10.0.0.2/32'] })).toBe(false);
    expect(guardProgram(a).length).toBeLessThan(4096);
  });
  it('fits classic BPF with the longest lists the settings allow (and a leg with 16 addresses of its own)', () => {
    const mac = (i: number): string => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const v6 = (i: number): string => `2001:db8::${i.toString(16)}`;
    const g = {
      vrrp: Array.from({ length: MAX_VRRP }, (_, r) => ({ vrid: r + 1, vips: Array.from({ length: MAX_VIPS }, (_, j) => v6(1000 + r * MAX_VIPS + j)) })),
      allowedMacs: Array.from({ length: MAX_ALLOWED_MACS }, (_, i) => mac(i + 10)),
      allowedAddresses: Array.from({ length: MAX_ALLOWED_ADDRESSES }, (_, i) => `${v6(i + 1)}/128`),
    };
    const rules = guardRules({ mac: mac(1), ips: Array.from({ length: 16 }, (_, i) => `${v6(5000 + i)}/64`) }, g);
    expect(guardProgram(rules).length).toBeLessThanOrEqual(4096);
    expect(() => guardProgram({ macs: rules.macs, addresses: [...rules.addresses, ...Array.from({ length: 300 }, (_, i) => `${v6(9000 + i)}/128`)] })).toThrow(GuardTooLarge);
  });
});

describe('drop counters', () => {
  const dev: GuardedDevice = { network: 'g', pod: 'ns/p', interface: 'net1', hostIf: 'pl0123456789ab', podRef: { namespace: 'ns', name: 'p' } };
  function fake(drops: () => number): Kernel {
    return { links: async () => [{ index: 7, name: dev.hostIf, mtu: 1450, mac: '', up: true }], clsactDrops: async () => new Map([[7, drops()]]) } as unknown as Kernel;
  }
  it('adds what is new to the counter, reports the first drops and then at most once per quiet period', async () => {
    let n = 0;
    let now = 1_000_000;
    const reports: number[] = [];
    const metrics = new AgentMetrics();
    let devices = [dev];
    const g = new GuardDrops(fake(() => n), () => devices, { metrics, quietMs: 60_000, now: () => now, onDrops: (_d, fresh) => reports.push(fresh) });
    await g.poll();
    expect(reports).toEqual([]);
    n = 5; await g.poll();
    n = 7; now += 1000; await g.poll();
    n = 9; now += 60_000; await g.poll();
    expect(reports).toEqual([5, 2]);
    expect(await metrics.text()).toMatch(/^podlegs_leg_security_drops_total\{network="g",pod="ns\/p",interface="net1",reason="spoofed_source"\} 9$/m);
    devices = []; await g.poll(); // the leg is gone: so is its series
    expect(await metrics.text()).not.toMatch(/podlegs_leg_security_drops_total\{/);
  });
});
