// Head-end replication: one all-zero FDB entry per remote VTEP that hosts a
// member of the VNI, none towards nodes without members.
import { Kernel, ZERO_MAC } from './kernel/kernel';
import { Member } from './registry/member';

/** Pure: for each local VNI, the remote VTEPs that must receive its BUM traffic. */
export function desiredFlood(members: Member[], localVtep: string, localVnis: Iterable<number>): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const v of localVnis) out.set(v, new Set());
  for (const m of members) {
    if (m.vtep !== localVtep) out.get(m.vni)?.add(m.vtep);
  }
  return out;
}

/** Makes the flood list of one VXLAN device equal to want (have: its entries now, when already dumped). */
export async function syncFlood(k: Kernel, vxlanIndex: number, want: Set<string>, have?: Set<string>): Promise<{ added: string[]; removed: string[] }> {
  have ??= new Set((await k.fdb(vxlanIndex)).filter((e) => e.mac === ZERO_MAC).map((e) => e.dst));
  const added = [...want].filter((d) => !have.has(d));
  const removed = [...have].filter((d) => !want.has(d));
  for (const dst of added) await k.fdbAdd(vxlanIndex, { mac: ZERO_MAC, dst });
  for (const dst of removed) await k.fdbDelete(vxlanIndex, { mac: ZERO_MAC, dst });
  return { added, removed };
}
