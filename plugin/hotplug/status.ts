// network-status after a hot-plug: the entries podlegs did not write (eth0 first) stay as they
// are, podlegs' entries are rebuilt from the recorded legs — the same entries ADD writes — and a
// leg whose NAD changed in a way that cannot be applied live carries STALE_KEY with the reason.
import { buildNetworkStatus } from '../k8s/network-status';
import { NetworkStatus, VLANS_KEY, VNI_KEY } from '../../overlay/agent/k8s/network-status';
import type { LegState } from '../cni/state';

/**
 * NPWG network-status has no per-entry condition field; like podlegs.io/vni this is a
 * domain-prefixed key, which readers of the standard fields ignore.
 */
export const STALE_KEY = 'podlegs.io/stale';

export const legStatuses = (legs: LegState[]): Parameters<typeof buildNetworkStatus>[2] => legs.map((l) => ({
  network: l.network, ifname: l.ifname, mac: l.mac, mtu: l.mtu, ips: l.ips, vni: l.vni,
  ...(l.trunk ? { vlans: l.trunk.vlans.map((v) => ({ vid: v.vid, vni: v.vni })) } : {}),
}));

export function parseStatus(annotation: string | undefined): NetworkStatus[] {
  try {
    const list = JSON.parse(annotation ?? '[]') as unknown;
    return Array.isArray(list) ? list as NetworkStatus[] : [];
  } catch {
    return [];
  }
}

const ours = (e: NetworkStatus): boolean => e?.[VNI_KEY] !== undefined || e?.[VLANS_KEY] !== undefined;

export function mergeStatus(existing: NetworkStatus[], legs: LegState[], stale: Map<string, string>): NetworkStatus[] {
  const built = buildNetworkStatus('', undefined, legStatuses(legs.filter((l) => !l.pending)))
    .map((e) => (stale.has(String(e.interface)) ? { ...e, [STALE_KEY]: stale.get(String(e.interface)) } : e));
  return [...existing.filter((e) => !ours(e)), ...built];
}

const canonical = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
  ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : x));

export const sameJson = (a: unknown, b: unknown): boolean => canonical(a) === canonical(b);
