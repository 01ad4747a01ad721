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

/** Who a segment of this node belongs to: its VXLAN device's local address and UDP port. */
export interface SegmentOwner {
  local: string;
  /** Absent for attachments recorded before the port was: then the port is not compared. */
  port?: number;
}

/**
 * When an empty segment may go. emptySince is the memory of since-when each VNI has had no
 * leg (updated by the rule); busy VNIs (an ADD is building them) never go.
 */
export interface Grace { graceMs: number; emptySince: Map<number, number>; now: number; busy?: Set<number> }

/**
 * No grace: a caller without an agent removes emptied segments at once. Safe because every
 * such caller holds the node lock, which an ADD holds from creating a segment until its leg
 * is plugged in: the gap the agent's grace period covers cannot occur. (A marker for a later
 * sweep would need a sweeper, and a node without an agent has none.)
 */
export const noGrace = (): Grace => ({ graceMs: 0, emptySince: new Map(), now: Date.now() });

/** The devices of vni's segment that are this node's own: kind, VNI and (VXLAN) local address and port verified. */
function verifiedDevices(links: LinkInfo[], vni: number, owner: SegmentOwner): { bridge?: LinkInfo; vxlan?: LinkInfo } {
  const bridge = links.find((l) => l.name === bridgeName(vni) && segmentRole(l)?.role === 'bridge');
  const vxlan = links.find((l) => l.name === vxlanName(vni) && segmentRole(l)?.role === 'vxlan'
    && l.vxlan?.local === owner.local && (owner.port === undefined || l.vxlan?.port === owner.port));
  return { bridge, vxlan };
}

/**
 * Pure. THE segment-removal rule, for DEL, GC, a failed ADD's rollback and the agent: the
 * segment of a VNI goes when it has had no local leg (bridge port other than its VXLAN
 * device, links in `leaving` not counted) for grace.graceMs; only its devices verified as
 * this node's go (bridge of kind bridge; VXLAN device of that VNI, local address and port).
 * A device with a segment's name but another kind, VNI, port or local address is never
 * touched; enslaved to the bridge, it counts as a port and keeps the bridge too. vnis: the
 * candidates (all segments when omitted). Returns the device indexes to delete and when the
 * next empty one would expire.
 */
export function segmentsToRemove(links: LinkInfo[], owner: SegmentOwner, grace: Grace, vnis?: Iterable<number>, leaving = new Set<number>()):
  { remove: Map<number, number[]>; nextCheck?: number } {
  const candidates = new Set(vnis ?? links.map((l) => segmentRole(l)?.vni).filter((v): v is number => v !== undefined));
  const remove = new Map<number, number[]>();
  let nextCheck: number | undefined;
  if (!vnis) for (const v of [...grace.emptySince.keys()]) if (!candidates.has(v)) grace.emptySince.delete(v);
  for (const vni of candidates) {
    const { bridge, vxlan } = verifiedDevices(links, vni, owner);
    if (!bridge && !vxlan) { grace.emptySince.delete(vni); continue; }
    const legs = bridge ? links.filter((l) => l.master === bridge.index && l.index !== vxlan?.index && !leaving.has(l.index)) : [];
    if (legs.length || grace.busy?.has(vni)) { grace.emptySince.delete(vni); continue; }
    const since = grace.emptySince.get(vni) ?? grace.now;
    grace.emptySince.set(vni, since);
    if (grace.now - since >= grace.graceMs) remove.set(vni, [vxlan?.index, bridge?.index].filter((i): i is number => i !== undefined));
    else nextCheck = Math.min(nextCheck ?? Infinity, since + grace.graceMs);
  }
  return { remove, ...(nextCheck !== undefined ? { nextCheck } : {}) };
}

export interface Removal { removed: number[]; nextCheck?: number }

/**
 * Removes host-side links and applies the segment-removal rule to the VNIs they were legs of
 * (every segment of the node when vnis is omitted), all in one links dump and one kernel
 * batch: nobody ever sees half a segment. Names that do not exist are skipped.
 */
export async function removeLegsAndEmptySegments(k: Pick<Kernel, 'links' | 'deleteLinks'>, o: { hostIfs: string[]; vnis?: number[]; owner: SegmentOwner; grace: Grace; links?: LinkInfo[] }): Promise<Removal> {
  const links = o.links ?? (await k.links());
  const leaving = new Set(links.filter((l) => o.hostIfs.includes(l.name)).map((l) => l.index));
  const { remove, nextCheck } = segmentsToRemove(links, o.owner, o.grace, o.vnis, leaving);
  for (const devs of remove.values()) for (const d of devs) leaving.add(d);
  if (leaving.size) await k.deleteLinks([...leaving]);
  for (const vni of remove.keys()) o.grace.emptySince.delete(vni);
  return { removed: [...remove.keys()], ...(nextCheck !== undefined ? { nextCheck } : {}) };
}
