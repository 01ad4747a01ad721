// The agent's reconciler: desired flood lists computed purely from membership,
// actual ones read from the kernel, and only the difference applied. It never
// flushes, so traffic on entries that are already right is never interrupted.
import { Kernel, ZERO_MAC } from '../kernel/kernel';
import { vniOfSegmentName } from '../names';
import { desiredFlood } from '../flood';
import { Member } from '../registry/member';

export interface ActualSegment { vni: number; vxlanIndex: number; flood: Set<string> }
export interface FloodOp { op: 'add' | 'del'; vni: number; vxlanIndex: number; dst: string }

/** Segments on this node (by their VXLAN devices) and their current flood lists. */
export async function readActual(k: Kernel): Promise<Map<number, ActualSegment>> {
  const out = new Map<number, ActualSegment>();
  for (const l of await k.links()) {
    const vni = l.kind === 'vxlan' ? vniOfSegmentName(l.name) : undefined;
    if (vni === undefined) continue;
    out.set(vni, { vni, vxlanIndex: l.index, flood: new Set() });
  }
  if (out.size === 0) return out;
  const byIndex = new Map([...out.values()].map((s) => [s.vxlanIndex, s]));
  for (const e of await k.fdbAll()) {
    const seg = byIndex.get(e.ifindex);
    if (seg && e.mac === ZERO_MAC) seg.flood.add(e.dst);
  }
  return out;
}

/** Pure: the operations that turn actual into desired. */
export function plan(actual: Map<number, ActualSegment>, members: Member[], localVtep: string): FloodOp[] {
  const want = desiredFlood(members, localVtep, actual.keys());
  const ops: FloodOp[] = [];
  for (const [vni, seg] of actual) {
    const w = want.get(vni) ?? new Set<string>();
    for (const dst of w) if (!seg.flood.has(dst)) ops.push({ op: 'add', vni, vxlanIndex: seg.vxlanIndex, dst });
    for (const dst of seg.flood) if (!w.has(dst)) ops.push({ op: 'del', vni, vxlanIndex: seg.vxlanIndex, dst });
  }
  return ops;
}

export async function apply(k: Kernel, ops: FloodOp[]): Promise<void> {
  for (const o of ops) {
    if (o.op === 'add') await k.fdbAdd(o.vxlanIndex, { mac: ZERO_MAC, dst: o.dst });
    else await k.fdbDelete(o.vxlanIndex, { mac: ZERO_MAC, dst: o.dst });
  }
}
