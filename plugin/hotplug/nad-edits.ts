// The NAD-edit rule: what a running leg does when its NetworkAttachmentDefinition changes.
// VNI, MTU and IPAM cannot change under a running pod without cutting its sessions (a new
// segment, a link MTU the NF negotiated with its peers, addresses it announced), so the leg
// keeps what it has and is reported stale (network-status STALE_KEY + a warning Event); pods
// created from then on get the new config (ADD reads the NAD as it is now). This is the one
// dispatch point for NAD edits: access legs are judged here; a trunk leg's VLAN list is the
// trunk-edit code's (not judged here).
import type { NetworkConf } from '../cni/config';
import { legMtu } from '../cni/mtu';
import type { MtuLimit } from '../../overlay/underlay';
import type { LegState } from '../cni/state';
import { sameJson } from './status';

/** Why the running leg no longer matches its NAD (empty: it matches, or the change applies live). */
export function staleReasons(leg: LegState, now: NetworkConf, selIps: string[] | undefined, limit: MtuLimit): string[] {
  if (leg.trunk) return []; // VLAN lists: trunk edits
  const out: string[] = [];
  if (now.vni !== leg.vni) out.push(`vni ${leg.vni} → ${now.vni}`);
  let mtu: number | string;
  try { mtu = legMtu(`network ${now.name}`, now.mtu, limit); } catch (e) { mtu = (e as Error).message; }
  if (mtu !== leg.mtu) out.push(`mtu ${leg.mtu} → ${mtu}`);
  const ipamNow = selIps ? undefined : now.ipam; // the element's ips win over IPAM, at ADD as here
  if (!sameJson(ipamNow ?? null, leg.ipam ?? null)) out.push('ipam changed');
  return out;
}

export const staleMessage = (leg: LegState, reasons: string[]): string =>
  `NetworkAttachmentDefinition ${leg.network} changed (${reasons.join(', ')}) since ${leg.ifname} was attached; the running leg keeps its old config, pods created from now on get the new one: recreate the pod to apply it`;
