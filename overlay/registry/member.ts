// A member of a segment: one leg on one node, as the other nodes need to know it.
import { macProblem, vtepProblem } from '../values';
import * as ipaddr from 'ipaddr.js';

export interface Member {
  vni: number;
  vtep: string;      // the node hosting the leg
  mac: string;       // the leg's MAC inside the pod
  owner: string;     // "<containerId>/<attachment ifname>/<leg ifname>": unique per leg
  network?: string;
}

export { vtepProblem };

export type MemberProblem = { where: string; reason: string };

/**
 * A VTEP string → its normalized form, or why it is unusable. Pure, so remembered: an agent
 * reading 20,000 entries of 1,000 nodes parses each distinct address once (ipaddr.js parses
 * are ~3 µs each, three per entry). Bounded: cleared when it grows past 8,192 addresses.
 */
const vteps = new Map<string, { vtep: string } | { problem: string }>();
function checkedVtep(v: string): { vtep: string } | { problem: string } {
  let r = vteps.get(v);
  if (r) return r;
  if (!ipaddr.isValid(v)) r = { problem: 'vtep is not an IP address' };
  else {
    const bad = vtepProblem(v);
    r = bad ? { problem: bad } : { vtep: ipaddr.process(v).toString() };
  }
  if (vteps.size >= 8192) vteps.clear();
  vteps.set(v, r);
  return r;
}

/** Validates an entry read from a shared store; never trust another node's bytes. */
export function parseMember(raw: unknown): Member | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const m = raw as Record<string, unknown>;
  if (typeof m.vni !== 'number' || !Number.isInteger(m.vni) || m.vni < 1 || m.vni > 16777215) return 'vni out of range';
  if (typeof m.vtep !== 'string') return 'vtep is not an IP address';
  const vtep = checkedVtep(m.vtep);
  if ('problem' in vtep) return vtep.problem;
  if (typeof m.mac !== 'string') return 'mac is not a string';
  // A static FDB entry for a group or all-zero MAC would hijack flooding.
  const badMac = macProblem(m.mac);
  if (badMac) return `mac ${badMac}`;
  if (typeof m.owner !== 'string' || m.owner === '') return 'owner missing';
  return { vni: m.vni, vtep: vtep.vtep, mac: m.mac, owner: m.owner, ...(typeof m.network === 'string' ? { network: m.network } : {}) };
}

/** What a change was about: only members of this VTEP may have changed. */
export interface WatchHint { vtep: string }

/**
 * Where members come from: a shared directory now, Kubernetes later. The agent needs
 * nothing else: a source that can list and can say "something may have changed".
 */
export interface MembershipSource {
  /**
   * Every member the source knows, plus the entries it had to skip. Throws when the
   * source cannot answer (unreachable, not synced yet): the agent then changes nothing,
   * since an empty answer would withdraw every flood entry of the node.
   */
  list(): Promise<{ members: Member[]; problems: MemberProblem[] }>;
  /**
   * Calls onChange (debounced by the caller) whenever membership may have changed; returns a
   * stop function. A hint, when the source can give one, says whose members it was about.
   */
  watch(onChange: (hint?: WatchHint) => void): () => void;
  /** Optional: forget whatever was cached, so the next list() reads everything (periodic resync). */
  resync?(): void;
}
