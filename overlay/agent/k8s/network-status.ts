// k8s.v1.cni.cncf.io/network-status as Multus writes it: the default network
// (Cilium's eth0) first with default: true, then one entry per podlegs leg. The agent reads
// it (membership, Events); the plugin writes its entries (plugin/k8s/network-status.ts).

export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';
export const VNI_KEY = 'podlegs.io/vni';
/** A trunk leg's VLANs: [{ vid, vni }]; its untagged (native) network, if any, is VNI_KEY. */
export const VLANS_KEY = 'podlegs.io/vlans';

export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  mtu?: number;
  default?: boolean;
  dns: Record<string, unknown>;
  gateway?: string[];
  [custom: string]: unknown;
}

/** What a leg on a NAD carries, in the shape of network-status' podlegs keys: an access VNI, or a trunk's VLANs (+ native VNI). */
export interface NadVnis { vni?: number; vlans?: { vid: number; vni: number }[] }

export interface StatusLeg { network: string; ifname: string; mac: string; vni: number }

/**
 * Legs of a pod as another node sees them: entries carrying our keys (podlegs wrote them), and,
 * given `nads`, entries without them whose name is a podlegs NAD (Multus wrote them after running
 * podlegs as a delegate: {name: "<ns>/<nad>", interface, ips, mac, dns}); the NAD gives the VNIs.
 */
export function legsFromStatus(annotation: string | undefined, nads?: Map<string, NadVnis>): StatusLeg[] {
  if (!annotation) return [];
  let list: unknown;
  try {
    list = JSON.parse(annotation);
  } catch {
    throw new Error(`${NETWORK_STATUS_ANNOTATION} is not JSON`);
  }
  if (!Array.isArray(list)) throw new Error(`${NETWORK_STATUS_ANNOTATION} is not a list`);
  const out: StatusLeg[] = [];
  for (const e of list as NetworkStatus[]) {
    const own = { vni: e?.[VNI_KEY], vlans: e?.[VLANS_KEY] };
    const ours = typeof own.vni === 'number' || Array.isArray(own.vlans);
    const keys: { vni?: unknown; vlans?: unknown } | undefined = ours ? own : e?.default === true ? undefined : nads?.get(String(e?.name));
    if (!keys) continue;
    const { vni, vlans } = keys;
    if (typeof e.mac !== 'string' || typeof e.interface !== 'string') throw new Error(`${NETWORK_STATUS_ANNOTATION}: leg of ${String(e.name)} lacks mac or interface`);
    if (typeof vni === 'number') out.push({ network: String(e.name), ifname: e.interface, mac: e.mac, vni });
    for (const v of Array.isArray(vlans) ? vlans as unknown[] : []) {
      const { vid, vni: vv } = (v ?? {}) as { vid?: unknown; vni?: unknown };
      if (typeof vid !== 'number' || typeof vv !== 'number') throw new Error(`${NETWORK_STATUS_ANNOTATION}: ${VLANS_KEY} of ${String(e.name)} is malformed`);
      out.push({ network: String(e.name), ifname: `${e.interface}.${vid}`, mac: e.mac, vni: vv });
    }
  }
  return out;
}
