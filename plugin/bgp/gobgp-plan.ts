// Pure part of the gobgp driver: the gobgp objects that express a DesiredBgp, and the ordered
// list of `gobgp` CLI operations that turns an actual state into it.
//
// Ownership: bgp-sync manages exactly the neighbors listed in the neighbor-set `podlegs-peers`
// (kept in the speaker itself, so a restarted bgp-sync knows what it owns), and the defined sets,
// statements and the policy whose names start with `podlegs-`. It never touches other neighbors
// (e.g. the upstream router), and keeps other policies of the global import assignment after its own.
//
// The guard, as one global import policy `podlegs-guard` (gobgp applies per-neighbor policies only
// in route-server mode, so selection is by neighbor-set inside global statements):
//   podlegs-deny[6]        from podlegs-peers, prefix in podlegs-denied[6]            → reject
//   podlegs-allow[6]-<s>   from podlegs-sel-<s>, prefix in podlegs-allow[6]-<s>        → accept
//   podlegs-rest           from podlegs-peers                                           → reject
// Routes from other neighbors match none of these and keep the assignment's default action.
import type { DesiredBgp } from './desired';
import { maxLen, Prefix } from './prefixes';

export const PEERS_SET = 'podlegs-peers';
/**
 * Every podlegs neighbor-set also holds 0.0.0.0, which can never be a neighbor: gobgpd treats a
 * condition on an EMPTY neighbor-set as matching every neighbor (seen in the lab: with no fw pod
 * yet, an lb pod's route inside fw's range was accepted), so no set may ever be empty.
 */
export const SENTINEL = '0.0.0.0';
export const POLICY = 'podlegs-guard';
const OWN = /^podlegs-/;

export interface GobgpStatement { name: string; neighborSet: string; prefixSet?: string; action: 'accept' | 'reject' | 'none' }
export interface GobgpNeighbor { address: string; asn: number; established: boolean; establishedAt?: number }
export interface GobgpAssignment { policies: string[]; defaultAction: 'accept' | 'reject' }

export interface GobgpActual {
  neighbors: GobgpNeighbor[];
  neighborSets: Map<string, string[]>;   // set → addresses (no /32)
  prefixSets: Map<string, string[]>;     // set → "prefix min..max"
  policies: Map<string, GobgpStatement[]>;
  statements: string[];                  // names of all defined statements
  importAssignment?: GobgpAssignment;
}

export interface GobgpDesired {
  neighbors: { address: string; asn: number }[];
  neighborSets: Map<string, string[]>;
  prefixSets: Map<string, string[]>;
  statements: GobgpStatement[];
}

export interface GobgpOp { why: string; argv: string[] }

export const prefixEntry = (p: Prefix): string => `${p.text} ${p.len}..${maxLen(p)}`;

export function gobgpDesired(d: DesiredBgp): GobgpDesired {
  const prefixSets = new Map<string, string[]>();
  const neighborSets = new Map<string, string[]>([[PEERS_SET, [SENTINEL, ...d.neighbors.map((n) => n.address)]]]);
  const statements: GobgpStatement[] = [];
  const byFamily = (ps: Prefix[], v6: boolean): string[] => ps.filter((p) => p.v6 === v6).map(prefixEntry);
  for (const v6 of [false, true]) {
    const denied = byFamily(d.guard.denied, v6);
    if (!denied.length) continue;
    const set = `podlegs-denied${v6 ? '6' : ''}`;
    prefixSets.set(set, denied);
    statements.push({ name: `podlegs-deny${v6 ? '6' : ''}`, neighborSet: PEERS_SET, prefixSet: set, action: 'reject' });
  }
  for (const s of d.guard.selectors) {
    neighborSets.set(`podlegs-sel-${s.name}`, [SENTINEL, ...s.members]);
    for (const v6 of [false, true]) {
      const allowed = byFamily(s.allowed, v6);
      if (!allowed.length) continue;
      const set = `podlegs-allow${v6 ? '6' : ''}-${s.name}`;
      prefixSets.set(set, allowed);
      statements.push({ name: set, neighborSet: `podlegs-sel-${s.name}`, prefixSet: set, action: 'accept' });
    }
  }
  statements.push({ name: 'podlegs-rest', neighborSet: PEERS_SET, action: 'reject' });
  return { neighbors: d.neighbors.map(({ address, asn }) => ({ address, asn })), neighborSets, prefixSets, statements };
}

const sameStatements = (a: GobgpStatement[] | undefined, b: GobgpStatement[]): boolean =>
  !!a && a.length === b.length && a.every((s, i) => s.name === b[i].name && s.neighborSet === b[i].neighborSet
    && (s.prefixSet ?? '') === (b[i].prefixSet ?? '') && s.action === b[i].action);

/** The ordered operations from `actual` to `want`. Empty when they agree. */
export function planGobgp(want: GobgpDesired, actual: GobgpActual): GobgpOp[] {
  const ops: GobgpOp[] = [];
  const op = (why: string, ...argv: string[]): void => { ops.push({ why, argv }); };
  let guardChanged = false;
  const touched = new Set<string>(); // neighbors whose selector membership changed

  // 1. Defined sets: create, add what is missing, drop stale prefixes (narrowing is always safe).
  for (const [name, entries] of want.prefixSets) {
    const have = actual.prefixSets.get(name);
    for (const e of entries.filter((x) => !have?.includes(x))) { op(`allow/deny prefix ${e} in ${name}`, 'policy', 'prefix', 'add', name, ...e.split(' ')); guardChanged = true; }
    for (const e of (have ?? []).filter((x) => !entries.includes(x))) { op(`stale prefix ${e} in ${name}`, 'policy', 'prefix', 'del', name, ...e.split(' ')); guardChanged = true; }
  }
  for (const [name, members] of want.neighborSets) {
    const have = actual.neighborSets.get(name);
    if (!have) op(`neighbor-set ${name}`, 'policy', 'neighbor', 'add', name);
    for (const a of members.filter((x) => !have?.includes(x))) {
      op(`${a} joins ${name}`, 'policy', 'neighbor', 'add', name, a);
      if (name !== PEERS_SET) touched.add(a);
    }
  }

  // 2. The guard policy and its statements, rebuilt whenever they differ.
  const assignment = actual.importAssignment;
  if (!sameStatements(actual.policies.get(POLICY), want.statements)) {
    guardChanged = true;
    if (assignment?.policies.includes(POLICY)) op('detach the old guard', 'global', 'policy', 'import', 'del', POLICY);
    if (actual.policies.has(POLICY)) op('remove the old guard', 'policy', 'del', POLICY);
    for (const s of actual.statements.filter((n) => OWN.test(n))) op(`remove old statement ${s}`, 'policy', 'statement', 'del', s);
    for (const s of want.statements) {
      op(`statement ${s.name}`, 'policy', 'statement', 'add', s.name);
      op(`${s.name}: from ${s.neighborSet}`, 'policy', 'statement', s.name, 'add', 'condition', 'neighbor', s.neighborSet);
      if (s.prefixSet) op(`${s.name}: prefix in ${s.prefixSet}`, 'policy', 'statement', s.name, 'add', 'condition', 'prefix', s.prefixSet);
      op(`${s.name}: ${s.action}`, 'policy', 'statement', s.name, 'add', 'action', s.action);
    }
    op('the guard policy', 'policy', 'add', POLICY, ...want.statements.map((s) => s.name));
  }
  // 3. Global import: the guard first, other (admin) policies after it, default kept (accept if none).
  const others = (assignment?.policies ?? []).filter((p) => p !== POLICY);
  const rebuilt = ops.some((o) => o.argv[0] === 'global');
  if (rebuilt || assignment?.policies[0] !== POLICY) {
    op('global import policy: guard first', 'global', 'policy', 'import', 'set', POLICY, ...others, 'default', assignment?.defaultAction ?? 'accept');
  }

  // 4. Neighbors: only those bgp-sync owns (members of podlegs-peers) are removed or changed.
  const owned = new Set(actual.neighborSets.get(PEERS_SET) ?? []);
  const wantBy = new Map(want.neighbors.map((n) => [n.address, n]));
  const haveBy = new Map(actual.neighbors.map((n) => [n.address, n]));
  const added = new Set<string>();
  for (const n of actual.neighbors) {
    if (!owned.has(n.address)) continue;
    const w = wantBy.get(n.address);
    if (!w) op(`pod peer ${n.address} is gone`, 'neighbor', 'del', n.address);
    else if (w.asn !== n.asn) op(`pod peer ${n.address}: AS ${n.asn} → ${w.asn}`, 'neighbor', 'del', n.address);
  }
  for (const w of want.neighbors) {
    const h = haveBy.get(w.address);
    if (h && !owned.has(w.address) && h.asn === w.asn) continue; // configured by someone else, same peer: leave it
    if (!h || h.asn !== w.asn) {
      if (h && !owned.has(w.address)) op(`neighbor ${w.address} was configured outside bgp-sync with AS ${h.asn}; replacing`, 'neighbor', 'del', w.address);
      op(`pod peer ${w.address} AS ${w.asn}`, 'neighbor', 'add', w.address, 'as', String(w.asn));
      added.add(w.address);
    }
  }

  // 5. Stale set members, after their neighbors are gone.
  for (const [name, members] of want.neighborSets) {
    for (const a of (actual.neighborSets.get(name) ?? []).filter((x) => !members.includes(x))) {
      op(`${a} leaves ${name}`, 'policy', 'neighbor', 'del', name, a);
      if (name !== PEERS_SET) touched.add(a);
    }
  }
  // 6. Re-evaluate routes already received under the old guard.
  for (const n of want.neighbors) {
    if (added.has(n.address) || !haveBy.get(n.address)?.established) continue;
    if (guardChanged || touched.has(n.address)) op(`re-check ${n.address}'s routes against the guard`, 'neighbor', n.address, 'softresetin');
  }
  // 7. Our defined sets that nothing wants any more.
  for (const [name] of actual.prefixSets) if (OWN.test(name) && !want.prefixSets.has(name)) op(`unused ${name}`, 'policy', 'prefix', 'del', name);
  for (const [name] of actual.neighborSets) if (OWN.test(name) && !want.neighborSets.has(name)) op(`unused ${name}`, 'policy', 'neighbor', 'del', name);
  return ops;
}
