// The plugin's entries of k8s.v1.cni.cncf.io/network-status (the format and its reader are
// the agent's: overlay/agent/k8s/network-status.ts).
import { Result } from '../cni/versions';
import { NetworkStatus, VLANS_KEY, VNI_KEY } from '../../overlay/agent/k8s/network-status';

export interface LegStatus { network: string; ifname: string; mac?: string; mtu: number; ips: string[]; vni: number; vlans?: { vid: number; vni: number }[] }

const bare = (cidr: string): string => cidr.split('/')[0];

/** The default network's entry from prevResult: its sandbox interface and that interface's IPs. */
export function defaultEntry(defaultName: string, prev: Result | undefined): NetworkStatus | undefined {
  const ifs = prev?.interfaces ?? [];
  const idx = ifs.findIndex((i) => i.sandbox && i.name === 'eth0');
  const i = idx >= 0 ? idx : ifs.findIndex((x) => !!x.sandbox);
  if (i < 0) return undefined;
  const ips = (prev?.ips ?? []).filter((ip) => ip.interface === i || (ip.interface === undefined && ifs.length <= 2));
  const gateways = ips.map((ip) => ip.gateway).filter((g): g is string => !!g);
  return {
    name: defaultName, interface: ifs[i].name, ips: ips.map((ip) => bare(ip.address)),
    ...(ifs[i].mac ? { mac: ifs[i].mac } : {}), default: true, dns: prev?.dns ?? {},
    ...(gateways.length ? { gateway: gateways } : {}),
  };
}

export function buildNetworkStatus(defaultName: string, prev: Result | undefined, legs: LegStatus[]): NetworkStatus[] {
  const out: NetworkStatus[] = [];
  const def = defaultEntry(defaultName, prev);
  if (def) out.push(def);
  for (const l of legs) {
    out.push({
      name: l.network, interface: l.ifname, ips: l.ips.map(bare), ...(l.mac ? { mac: l.mac } : {}), mtu: l.mtu, dns: {},
      ...(l.vni ? { [VNI_KEY]: l.vni } : {}), ...(l.vlans ? { [VLANS_KEY]: l.vlans } : {}),
    });
  }
  return out;
}
