// A member of a segment: one leg on one node, as the other nodes need to know it.
import * as ipaddr from 'ipaddr.js';

export interface Member {
  vni: number;
  vtep: string;      // the node hosting the leg
  mac: string;       // the leg's MAC inside the pod
  owner: string;     // "<containerId>/<attachment ifname>/<leg ifname>": unique per leg
  network?: string;
}

export type MemberProblem = { where: string; reason: string };

/** Validates an entry read from a shared store; never trust another node's bytes. */
export function parseMember(raw: unknown): Member | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const m = raw as Record<string, unknown>;
  if (typeof m.vni !== 'number' || !Number.isInteger(m.vni) || m.vni < 1 || m.vni > 16777215) return 'vni out of range';
  if (typeof m.vtep !== 'string' || !ipaddr.isValid(m.vtep)) return 'vtep is not an IP address';
  const range = ipaddr.process(m.vtep).range();
  if (['unspecified', 'multicast', 'broadcast', 'loopback', 'linkLocal'].includes(range)) return `vtep ${m.vtep} is not unicast`;
  if (typeof m.mac !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m.mac)) return 'mac is malformed';
  if (typeof m.owner !== 'string' || m.owner === '') return 'owner missing';
  return { vni: m.vni, vtep: ipaddr.process(m.vtep).toString(), mac: m.mac, owner: m.owner, ...(typeof m.network === 'string' ? { network: m.network } : {}) };
}

/** Where members come from: a shared directory now, Kubernetes later. */
export interface MembershipSource {
  list(): Promise<{ members: Member[]; problems: MemberProblem[] }>;
  /** Calls onChange (debounced by the caller) whenever membership may have changed; returns a stop function. */
  watch(onChange: () => void): () => void;
}
