// The agent's reconciler: actual state read from the kernel in two dumps (links,
// FDB), desired state computed purely from membership (desired.ts), and only the
// difference applied. It never flushes, so entries that are already right are
// never touched and traffic on them is never interrupted. It only looks at
// podlegs' own segments (plbr<vni> bridges, plvx<vni> VXLAN devices).
import { FdbChange, FdbFailure, Kernel, LinkInfo, ZERO_MAC } from '../kernel/kernel';
import { segmentRole } from '../segment';
import { DesiredSegment, desiredState } from './desired';
import type { Member, MemberProblem } from '../registry/member';

export interface SegmentState {
  vni: number;
  vxlanIndex?: number;             // plvx<vni>, kind vxlan, same VNI
  bridgeIndex?: number;            // plbr<vni>, kind bridge
  legs: string[];                  // bridge ports other than the VXLAN device
  flood: Set<string>;              // remote VTEPs of the all-zero entry
  macs: Map<string, Set<string>>;  // unicast MAC → remote VTEP(s)
}

export type PlannedChange = FdbChange & { vni: number };

/** The kernel operations the reconciler uses (a fake one in unit tests). */
export type SegmentKernel = Pick<Kernel, 'links' | 'fdbAll' | 'fdbBatch' | 'deleteLinks'>;

/** This node's segments, their legs and their FDB, by VNI. */
export async function readSegments(k: SegmentKernel, links?: LinkInfo[]): Promise<Map<number, SegmentState>> {
  const all = links ?? (await k.links());
  const out = new Map<number, SegmentState>();
  const get = (vni: number): SegmentState => {
    let s = out.get(vni);
    if (!s) out.set(vni, (s = { vni, legs: [], flood: new Set(), macs: new Map() }));
    return s;
  };
  for (const l of all) {
    const seg = segmentRole(l);
    if (seg?.role === 'vxlan') get(seg.vni).vxlanIndex = l.index;
    else if (seg?.role === 'bridge') get(seg.vni).bridgeIndex = l.index;
  }
  if (out.size === 0) return out;
  const byBridge = new Map<number, SegmentState>();
  const byVxlan = new Map<number, SegmentState>();
  for (const s of out.values()) {
    if (s.bridgeIndex !== undefined) byBridge.set(s.bridgeIndex, s);
    if (s.vxlanIndex !== undefined) byVxlan.set(s.vxlanIndex, s);
  }
  for (const l of all) {
    const s = l.master === undefined ? undefined : byBridge.get(l.master);
    if (s && l.index !== s.vxlanIndex) s.legs.push(l.name);
  }
  for (const e of await k.fdbAll()) {
    const s = byVxlan.get(e.ifindex);
    if (!s || !e.permanent) continue; // learned entries are the kernel's, not ours
    if (e.mac === ZERO_MAC) s.flood.add(e.dst);
    else {
      let dsts = s.macs.get(e.mac);
      if (!dsts) s.macs.set(e.mac, (dsts = new Set()));
      dsts.add(e.dst);
    }
  }
  return out;
}

/**
 * Pure: the FDB changes that turn actual into desired, additions first (a MAC that
 * moved is replaced in place; deleting its old destination afterwards finds nothing).
 * Segments without a desired entry (not local) and without a VXLAN device are skipped.
 */
export function planFdb(actual: Map<number, SegmentState>, desired: Map<number, DesiredSegment>): PlannedChange[] {
  const adds: PlannedChange[] = [];
  const dels: PlannedChange[] = [];
  for (const [vni, seg] of actual) {
    const want = desired.get(vni);
    const vxlanIndex = seg.vxlanIndex;
    if (!want || vxlanIndex === undefined) continue;
    const change = (op: 'add' | 'del', mac: string, dst: string): PlannedChange => ({ op, vni, vxlanIndex, mac, dst });
    for (const dst of want.flood) if (!seg.flood.has(dst)) adds.push(change('add', ZERO_MAC, dst));
    for (const dst of seg.flood) if (!want.flood.has(dst)) dels.push(change('del', ZERO_MAC, dst));
    for (const [mac, dst] of want.macs) {
      const have = seg.macs.get(mac);
      if (!have || !have.has(dst) || have.size > 1) adds.push(change('add', mac, dst));
    }
    for (const [mac, dsts] of seg.macs) {
      const keep = want.macs.get(mac);
      for (const dst of dsts) if (dst !== keep) dels.push(change('del', mac, dst));
    }
  }
  return [...adds, ...dels];
}

/** Applies planned changes in batches; returns those the kernel refused. */
export const applyFdb = (k: SegmentKernel, changes: PlannedChange[]): Promise<FdbFailure[]> =>
  changes.length ? k.fdbBatch(changes) : Promise.resolve([]);

/**
 * The agent's rule applied once to a few VNIs (an ADD without an agent): their segments' FDB
 * made what desiredState wants from these members, in one batch. Refusals are returned.
 */
export async function convergeSegments(k: SegmentKernel, members: Member[], localVtep: string, vnis: Set<number>, links?: LinkInfo[]):
  Promise<{ changes: number; refused: FdbFailure[]; problems: MemberProblem[] }> {
  const actual = new Map([...(await readSegments(k, links))].filter(([vni]) => vnis.has(vni)));
  const want = desiredState(members, localVtep, actual.keys());
  const changes = planFdb(actual, want.segments);
  const refused = await applyFdb(k, changes);
  return { changes: changes.length - refused.length, refused, problems: want.problems };
}
