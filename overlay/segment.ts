// An L2 segment on one node: a bridge plus a VXLAN device for one VNI.
import { Kernel, LinkInfo } from './kernel/kernel';
import { isExists } from './kernel/errors';
import { bridgeName, vxlanName } from './names';
import { Underlay, legMtuLimit } from './underlay';

export interface Segment { vni: number; bridge: LinkInfo; vxlan: LinkInfo }

/** Returns the segment for vni, creating what is missing (EEXIST from a racing ADD is fine). */
export async function ensureSegment(k: Kernel, vni: number, u: Underlay, port: number): Promise<{ segment: Segment; created: boolean }> {
  let created = false;
  const ensure = async (name: string, make: () => Promise<LinkInfo>): Promise<LinkInfo> => {
    const have = await k.linkByName(name);
    if (have) return have;
    try {
      const l = await make();
      created = true;
      return l;
    } catch (e) {
      if (!isExists(e)) throw e;
      const l = await k.linkByName(name);
      if (!l) throw e;
      return l;
    }
  };
  const bridge = await ensure(bridgeName(vni), () => k.createBridge(bridgeName(vni), { up: true }));
  const vxlan = await ensure(vxlanName(vni), () =>
    k.createVxlan(vxlanName(vni), { vni, port, local: u.vtep, underlayIndex: u.link.index, mtu: legMtuLimit(u).max, master: bridge.index, up: true }));
  if (vxlan.master !== bridge.index) await k.setLink(vxlan.index, { master: bridge.index });
  if (!vxlan.up) await k.setLink(vxlan.index, { up: true });
  if (!bridge.up) await k.setLink(bridge.index, { up: true });
  return { segment: { vni, bridge, vxlan }, created };
}

export async function findSegment(k: Kernel, vni: number): Promise<Segment | undefined> {
  const [bridge, vxlan] = await Promise.all([k.linkByName(bridgeName(vni)), k.linkByName(vxlanName(vni))]);
  return bridge && vxlan ? { vni, bridge, vxlan } : undefined;
}

/** Ports of the segment's bridge other than its VXLAN device: the local legs. */
export async function localPorts(k: Kernel, seg: { bridge: LinkInfo; vxlan: LinkInfo }, links?: LinkInfo[]): Promise<LinkInfo[]> {
  const all = links ?? (await k.links());
  return all.filter((l) => l.master === seg.bridge.index && l.index !== seg.vxlan.index);
}

/**
 * Removes host-side links and, in the same kernel batch, the segments of vnis they leave
 * without any other port. Names that do not exist are skipped.
 */
export async function removeLegsAndEmptySegments(k: Kernel, hostIfs: string[], vnis: number[]): Promise<void> {
  const links = await k.links();
  const doomed = new Set(links.filter((l) => hostIfs.includes(l.name)).map((l) => l.index));
  for (const vni of new Set(vnis)) {
    const bridge = links.find((l) => l.name === bridgeName(vni));
    const vxlan = links.find((l) => l.name === vxlanName(vni));
    if (bridge && links.some((l) => l.master === bridge.index && l.index !== vxlan?.index && !doomed.has(l.index))) continue;
    if (vxlan) doomed.add(vxlan.index);
    if (bridge) doomed.add(bridge.index);
  }
  await k.deleteLinks([...doomed]);
}

/** Removes the segment when no local leg is left on it; true when removed. */
export async function removeSegmentIfUnused(k: Kernel, vni: number): Promise<boolean> {
  const links = await k.links();
  const bridge = links.find((l) => l.name === bridgeName(vni));
  const vxlan = links.find((l) => l.name === vxlanName(vni));
  if (bridge && links.some((l) => l.master === bridge.index && l.index !== vxlan?.index)) return false;
  if (vxlan) await k.deleteLink(vxlan.index);
  if (bridge) await k.deleteLink(bridge.index);
  return !!(bridge || vxlan);
}
