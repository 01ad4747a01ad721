// Finding the underlay: the interface VXLAN rides on, its MTU, and this node's VTEP.
import type { Kernel, LinkInfo } from './kernel/kernel';

export interface UnderlaySpec { interface: string; vtep: string; mtu: number | 'auto' }
export interface Underlay { link: LinkInfo; vtep: string; mtu: number }

/** Why the underlay is unusable, in words a node admin can act on. */
export class UnderlayError extends Error {}

/** links: a dump of the node's links taken under the node lock (ADD's one dump), else each is asked for. */
export async function resolveUnderlay(k: Kernel, spec: UnderlaySpec, links?: LinkInfo[]): Promise<Underlay> {
  const addrs = await k.addresses();
  let link: LinkInfo | undefined;
  if (spec.interface !== 'auto') {
    link = links ? links.find((l) => l.name === spec.interface) : await k.linkByName(spec.interface);
    if (!link) throw new UnderlayError(`underlay interface ${spec.interface} does not exist on this node`);
  } else if (spec.vtep !== 'auto') {
    const a = addrs.find((x) => x.address === spec.vtep);
    if (!a) throw new UnderlayError(`VTEP address ${spec.vtep} is not configured on any interface of this node`);
    link = links ? links.find((l) => l.index === a.index) : await k.linkByIndex(a.index);
  } else {
    // auto/auto: the interface of the default route (the way towards the other nodes).
    const def = (await k.routes(4)).find((r) => r.dstLen === 0 && r.oif);
    if (!def?.oif) throw new UnderlayError('cannot detect the underlay: no default route; set underlay.interface or underlay.vtep');
    link = links ? links.find((l) => l.index === def.oif) : await k.linkByIndex(def.oif);
  }
  if (!link) throw new UnderlayError('underlay interface vanished while it was being read');
  if (!link.up) throw new UnderlayError(`underlay interface ${link.name} is down`);
  let vtep = spec.vtep;
  const own = addrs.filter((a) => a.index === link!.index);
  if (vtep === 'auto') {
    const first = own.find((a) => a.family === 4) ?? own.find((a) => a.family === 6 && !a.address.startsWith('fe80'));
    if (!first) throw new UnderlayError(`underlay interface ${link.name} has no IPv4/IPv6 address to use as VTEP`);
    vtep = first.address;
  } else if (!own.some((a) => a.address === vtep)) {
    throw new UnderlayError(`VTEP address ${vtep} is not configured on underlay interface ${link.name}`);
  }
  const mtu = spec.mtu === 'auto' ? link.mtu : spec.mtu;
  return { link, vtep, mtu };
}

export type VtepFamily = 4 | 6;
/** vtep is an IP address already checked (values.ts); node:net's isIPv6 would compile its large regex on every CNI call. */
export const vtepFamily = (vtep: string): VtepFamily => (vtep.includes(':') ? 6 : 4);

/** What VXLAN adds to a leg's frame: outer IPv4 20 (IPv6 40) + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const vxlanOverhead = (family: VtepFamily): number => (family === 6 ? 70 : 50);

/** The largest leg MTU an underlay carries, and why (for error messages). */
export interface MtuLimit { max: number; why: string }

export function mtuLimit(underlayMtu: number, family: VtepFamily): MtuLimit {
  const overhead = vxlanOverhead(family);
  return { max: underlayMtu - overhead, why: `underlay MTU ${underlayMtu} - ${overhead} for VXLAN over IPv${family}` };
}

/** Every leg's (and VXLAN device's) MTU limit on this node: the one rule, by the VTEP's family. */
export const legMtuLimit = (u: Pick<Underlay, 'mtu' | 'vtep'>): MtuLimit => mtuLimit(u.mtu, vtepFamily(u.vtep));
