// An L2 segment on one node: a bridge plus a VXLAN device for one VNI.
import { Kernel, LinkInfo } from './kernel/kernel';
import { isExists } from './kernel/errors';
import { bridgeName, vniOfSegmentName, vxlanName } from './names';
import { Underlay, legMtuLimit } from './underlay';

export interface Segment { vni: number; bridge: LinkInfo; vxlan: LinkInfo }

/** A device with a segment's name that podlegs must not use or remove (it is someone else's). */
export class ForeignDevice extends Error {}

/** Our own segment devices only: right name and right kind (and VNI), or not ours. */
export function segmentRole(l: LinkInfo): { vni: number; role: 'vxlan' | 'bridge' } | undefined {
  const vni = vniOfSegmentName(l.name);
  if (vni === undefined) return undefined;
  if (l.name === vxlanName(vni) && l.kind === 'vxlan' && l.vxlan?.vni === vni) return { vni, role: 'vxlan' };
  if (l.name === bridgeName(vni) && l.kind === 'bridge') return { vni, role: 'bridge' };
  return undefined;
}

/** How an existing VXLAN device of ours differs from what this node's config asks for (empty: it matches). */
function vxlanDrift(l: LinkInfo, want: { port: number; local: string; underlayIndex: number }): string[] {
  const have = l.vxlan;
  const out: string[] = [];
  if (have?.port !== want.port) out.push(`port ${have?.port} → ${want.port}`);
  if (have?.local !== want.local) out.push(`local ${have?.local ?? 'none'} → ${want.local}`);
  if (have?.underlayIndex !== want.underlayIndex) out.push(`underlay ifindex ${have?.underlayIndex ?? 'none'} → ${want.underlayIndex}`);
  return out;
}

export interface EnsuredSegment {
  segment: Segment;
  created: boolean;
  /** Set when an existing VXLAN device of ours was replaced because it no longer matched: what differed. */
  replaced?: string;
}

/**
 * Returns the segment for vni, creating what is missing (EEXIST from a racing ADD is fine).
 * An existing device is verified: a VXLAN device of ours left with another port, local
 * address or underlay (a config change, a renumbered node) is replaced; a device with a
 * segment's name but another kind or VNI is foreign and refused, never touched.
 * known: the node's links dumped under the node lock (ADD's one dump), looked up instead of
 * asking the kernel per device, and kept current: what this call creates is added to it,
 * what it replaces taken out.
 */
export async function ensureSegment(k: Kernel, vni: number, u: Underlay, port: number, known?: LinkInfo[]): Promise<EnsuredSegment> {
  let created = false;
  let replaced: string | undefined;
  const ours = (l: LinkInfo, role: 'bridge' | 'vxlan'): LinkInfo => {
    if (segmentRole(l)?.role === role) return l;
    const what = l.kind === 'vxlan' ? `a VXLAN device with VNI ${l.vxlan?.vni}` : `a ${l.kind ?? 'device of unknown kind'}`;
    throw new ForeignDevice(`${l.name} exists on this node but is ${what}, not podlegs' ${role === 'bridge' ? 'bridge' : `VXLAN device for VNI ${vni}`}; podlegs leaves it alone: remove or rename it`);
  };
  const ensure = async (name: string, role: 'bridge' | 'vxlan', make: () => Promise<LinkInfo>): Promise<LinkInfo> => {
    const have = known ? known.find((l) => l.name === name) : await k.linkByName(name);
    if (have) return ours(have, role);
    try {
      const l = await make();
      created = true;
      known?.push(l);
      return l;
    } catch (e) {
      if (!isExists(e)) throw e;
      const l = await k.linkByName(name);
      if (!l) throw e;
      return ours(l, role);
    }
  };
  const want = { vni, port, local: u.vtep, underlayIndex: u.link.index };
  const makeVxlan = (): Promise<LinkInfo> => k.createVxlan(vxlanName(vni), { ...want, mtu: legMtuLimit(u).max, master: bridge.index, up: true });
  const bridge = await ensure(bridgeName(vni), 'bridge', () => k.createBridge(bridgeName(vni), { up: true }));
  let vxlan = await ensure(vxlanName(vni), 'vxlan', makeVxlan);
  const drift = vxlanDrift(vxlan, want);
  if (drift.length) {
    replaced = drift.join(', ');
    await k.deleteLink(vxlan.index);
    const gone = vxlan.index;
    if (known) known.splice(0, known.length, ...known.filter((l) => l.index !== gone));
    vxlan = await ensure(vxlanName(vni), 'vxlan', makeVxlan);
  }
  if (vxlan.master !== bridge.index) await k.setLink(vxlan.index, { master: bridge.index });
  if (!vxlan.up) await k.setLink(vxlan.index, { up: true });
  if (!bridge.up) await k.setLink(bridge.index, { up: true });
  return { segment: { vni, bridge, vxlan }, created, ...(replaced ? { replaced } : {}) };
}

/** Ports of the segment's bridge other than its VXLAN device: the local legs. */
export async function localPorts(k: Kernel, seg: { bridge: LinkInfo; vxlan: LinkInfo }, links?: LinkInfo[]): Promise<LinkInfo[]> {
  const all = links ?? (await k.links());
  return all.filter((l) => l.master === seg.bridge.index && l.index !== seg.vxlan.index);
}

/** The segment devices of vni that are podlegs' own (a foreign device with the name is not). */
function ourSegmentDevices(links: LinkInfo[], vni: number): { bridge?: LinkInfo; vxlan?: LinkInfo } {
  const find = (role: 'bridge' | 'vxlan'): LinkInfo | undefined => links.find((l) => {
    const r = segmentRole(l);
    return r?.vni === vni && r.role === role;
  });
  return { bridge: find('bridge'), vxlan: find('vxlan') };
}

/**
 * Removes host-side links and, in the same kernel batch, the segments of vnis they leave
 * without any other port. Names that do not exist are skipped.
 */
export async function removeLegsAndEmptySegments(k: Kernel, hostIfs: string[], vnis: number[]): Promise<void> {
  const links = await k.links();
  const doomed = new Set(links.filter((l) => hostIfs.includes(l.name)).map((l) => l.index));
  for (const vni of new Set(vnis)) {
    const { bridge, vxlan } = ourSegmentDevices(links, vni);
    if (bridge && links.some((l) => l.master === bridge.index && l.index !== vxlan?.index && !doomed.has(l.index))) continue;
    if (vxlan) doomed.add(vxlan.index);
    if (bridge) doomed.add(bridge.index);
  }
  await k.deleteLinks([...doomed]);
}

/** Removes the segment when no local leg is left on it; true when removed. */
export async function removeSegmentIfUnused(k: Kernel, vni: number): Promise<boolean> {
  const links = await k.links();
  const { bridge, vxlan } = ourSegmentDevices(links, vni);
  if (bridge && links.some((l) => l.master === bridge.index && l.index !== vxlan?.index)) return false;
  if (vxlan) await k.deleteLink(vxlan.index);
  if (bridge) await k.deleteLink(bridge.index);
  return !!(bridge || vxlan);
}
