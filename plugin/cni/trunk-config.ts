// Trunk networks: {"trunk": {"vlans": [{"vid": 10, "network": "vrrp-a"}, ...], "nativeNetwork": "mgmt"}}
// Parsed beside the VNI (access) networks; a leg naming a trunk network is the pod's trunk leg.
import { invalidConfig } from './errors';
import { int, isObj, obj, onlyKeys, str as name } from './validate';
import { MAX_TRUNK_VLANS } from '../../overlay/trunk-filter';

export interface TrunkVlanConf { vid: number; network: string }
export interface TrunkNetworkConf { name: string; vlans: TrunkVlanConf[]; nativeNetwork?: string; mtu?: number }

/** True for a `networks` entry that describes a trunk (has a "trunk" field). */
export const isTrunkEntry = (raw: unknown): boolean => isObj(raw) && raw.trunk !== undefined;

/** One trunk network entry; references are checked later by checkTrunkRefs. */
export function parseTrunkNetwork(netName: string, raw: unknown, where: string): TrunkNetworkConf {
  const n = obj(raw, where);
  if (n.vni !== undefined) throw invalidConfig(`${where} has both "vni" and "trunk": a network is either a segment (vni) or a trunk of segments`);
  onlyKeys(n, where, ['trunk', 'mtu']);
  const t = obj(n.trunk, `${where}.trunk`);
  onlyKeys(t, `${where}.trunk`, ['vlans', 'nativeNetwork']);
  if (!Array.isArray(t.vlans) || t.vlans.length === 0) throw invalidConfig(`${where}.trunk.vlans must be a non-empty list of {"vid": 1-4094, "network": NAME}`);
  if (t.vlans.length > MAX_TRUNK_VLANS) throw invalidConfig(`${where}.trunk.vlans has ${t.vlans.length} entries; at most ${MAX_TRUNK_VLANS}`);
  const byVid = new Map<number, string>();
  const byNet = new Map<string, number>();
  const vlans = t.vlans.map((rawVlan, i): TrunkVlanConf => {
    const w = `${where}.trunk.vlans[${i}]`;
    const v = obj(rawVlan, w);
    onlyKeys(v, w, ['vid', 'network']);
    const vid = int(v.vid, `${w}.vid`, 1, 4094);
    const network = name(v.network, `${w}.network`);
    if (byVid.has(vid)) throw invalidConfig(`${w}: VLAN ${vid} is listed twice (networks ${byVid.get(vid)} and ${network})`);
    if (byNet.has(network)) throw invalidConfig(`${w}: network ${network} is on VLANs ${byNet.get(network)} and ${vid}; that would bridge two VLANs into one segment`);
    byVid.set(vid, network);
    byNet.set(network, vid);
    return { vid, network };
  });
  const trunk: TrunkNetworkConf = { name: netName, vlans };
  if (t.nativeNetwork !== undefined) {
    const native = name(t.nativeNetwork, `${where}.trunk.nativeNetwork`);
    if (byNet.has(native)) throw invalidConfig(`${where}.trunk.nativeNetwork ${native} is also VLAN ${byNet.get(native)} of the trunk`);
    trunk.nativeNetwork = native;
  }
  if (n.mtu !== undefined) trunk.mtu = int(n.mtu, `${where}.mtu`, 576, 65535);
  return trunk;
}

/** Every network a trunk refers to must be an access (VNI) network of the same config. */
export function checkTrunkRefs(trunks: Map<string, TrunkNetworkConf>, accessNetworks: Set<string>): void {
  for (const t of trunks.values()) {
    const refs = [...t.vlans.map((v, i) => ({ net: v.network, where: `networks.${t.name}.trunk.vlans[${i}].network` })),
      ...(t.nativeNetwork ? [{ net: t.nativeNetwork, where: `networks.${t.name}.trunk.nativeNetwork` }] : [])];
    for (const r of refs) {
      if (accessNetworks.has(r.net)) continue;
      if (trunks.has(r.net)) throw invalidConfig(`${r.where} "${r.net}" is a trunk network; a trunk carries access (VNI) networks only`);
      throw invalidConfig(`${r.where} "${r.net.slice(0, 70)}" is not defined in networks (known access networks: ${[...accessNetworks].join(', ') || 'none'})`);
    }
  }
}

/** The networks a leg puts into the pod (an access leg: one; a trunk leg: its VLANs and native). */
export function legNetworks(leg: { network: string; trunk?: boolean }, trunks: Map<string, TrunkNetworkConf>): string[] {
  const t = leg.trunk ? trunks.get(leg.network) : undefined;
  if (!t) return [leg.network];
  return [...t.vlans.map((v) => v.network), ...(t.nativeNetwork ? [t.nativeNetwork] : [])];
}

/**
 * Per pod: at most one trunk leg; no network twice across all legs (access legs and the
 * trunk's VLANs and native network); addresses on a trunk only with a native network.
 */
export function checkTrunkLegs(legs: { network: string; interface: string; trunk?: boolean; ips?: string[] }[], trunks: Map<string, TrunkNetworkConf>): void {
  const trunkLegs = legs.map((l, i) => ({ l, i })).filter(({ l }) => l.trunk);
  if (trunkLegs.length > 1) {
    throw invalidConfig(`legs[${trunkLegs[1].i}] is a second trunk leg (legs[${trunkLegs[0].i}] is one already); a pod has at most one trunk leg`);
  }
  const seen = new Map<string, string>();
  legs.forEach((l, i) => {
    for (const net of legNetworks(l, trunks)) {
      const by = l.trunk ? `legs[${i}] (trunk ${l.network})` : `legs[${i}]`;
      const before = seen.get(net);
      if (before) throw invalidConfig(`network "${net}" is attached twice, by ${before} and by ${by}; one leg per network`);
      seen.set(net, by);
    }
    if (l.trunk && l.ips && !trunks.get(l.network)?.nativeNetwork) {
      throw invalidConfig(`legs[${i}].ips: trunk ${l.network} has no nativeNetwork, so untagged frames are dropped and ${l.interface} cannot carry addresses`);
    }
  });
}

/** The trunk entries of `networks` (the others are VNI networks, parsed by config.ts), references checked. */
export function parseTrunks(networksRaw: unknown, access: Map<string, unknown>): Map<string, TrunkNetworkConf> {
  const out = new Map<string, TrunkNetworkConf>();
  if (!isObj(networksRaw)) return out;
  for (const [netName, raw] of Object.entries(networksRaw)) {
    if (isTrunkEntry(raw)) out.set(netName, parseTrunkNetwork(netName, raw, `networks.${netName}`));
  }
  checkTrunkRefs(out, new Set(access.keys()));
  return out;
}
