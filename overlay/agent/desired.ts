// What this node's kernel should hold, computed purely from membership: for each
// local VNI, the remote VTEPs that get BUM traffic (head-end replication) and a
// static entry per remote member MAC, so unicast between members is not flooded.
import * as ipaddr from 'ipaddr.js';
import { Member, MemberProblem } from '../registry/member';

export interface DesiredSegment {
  flood: Set<string>;        // remote VTEPs with at least one member of the VNI
  macs: Map<string, string>; // remote member MAC → its VTEP
}

export interface Desired { segments: Map<number, DesiredSegment>; problems: MemberProblem[] }

const family = (ip: string): string => ipaddr.parse(ip).kind();

/**
 * Only VNIs in localVnis get entries: no flood entry towards a node is needed unless
 * this node takes part in the segment. A MAC claimed by two VTEPs in one VNI gets no
 * static entry (flooding still reaches it), and is reported.
 */
export function desiredState(members: Iterable<Member>, localVtep: string, localVnis: Iterable<number>): Desired {
  const segments = new Map<number, DesiredSegment>();
  for (const v of localVnis) segments.set(v, { flood: new Set(), macs: new Map() });
  const problems: MemberProblem[] = [];
  const localFamily = family(localVtep);
  const families = new Map<string, string>(); // one parse per distinct VTEP, not per member
  const familyOf = (ip: string): string => {
    let f = families.get(ip);
    if (f === undefined) families.set(ip, (f = family(ip)));
    return f;
  };
  const conflicts = new Map<string, Set<string>>(); // "vni mac" → VTEPs claiming it
  for (const m of members) {
    const seg = segments.get(m.vni);
    if (!seg || m.vtep === localVtep) continue;
    if (familyOf(m.vtep) !== localFamily) {
      problems.push({ where: `member ${m.owner} of vni ${m.vni}`, reason: `vtep ${m.vtep} is not reachable from local ${localFamily} vtep ${localVtep}` });
      continue;
    }
    seg.flood.add(m.vtep);
    const key = `${m.vni} ${m.mac}`;
    const claimed = conflicts.get(key);
    if (claimed) { claimed.add(m.vtep); continue; }
    const have = seg.macs.get(m.mac);
    if (have !== undefined && have !== m.vtep) {
      conflicts.set(key, new Set([have, m.vtep]));
      seg.macs.delete(m.mac);
      continue;
    }
    seg.macs.set(m.mac, m.vtep);
  }
  for (const [key, vteps] of conflicts) {
    const [vni, mac] = key.split(' ');
    problems.push({ where: `vni ${vni} mac ${mac}`, reason: `claimed by several VTEPs (${[...vteps].sort().join(', ')}): no static entry, flooded instead` });
  }
  return { segments, problems };
}
