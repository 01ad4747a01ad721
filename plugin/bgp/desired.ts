// The desired BGP state of the node speaker, computed purely from the config and the pod list:
// one neighbor per selected pod (its eth0 address; ASN from the pod annotation podlegs.io/bgp-asn,
// else the selector's peerAsn), and the prefix guard (deny list, allowed prefixes per selector).
import { asnFromText, asnProblem } from '../../overlay/values';
import * as ipaddr from 'ipaddr.js';
import type { BgpSyncConf } from './config';
import { matches } from '../cni/labels';
import { BGP_ASN_ANNOTATION } from '../cni/bgp-peer';
import type { PodInfo } from './pods';
import type { Prefix } from './prefixes';

export interface DesiredNeighbor { address: string; asn: number; selector: string; pod: string }
export interface GuardSelector { name: string; allowed: Prefix[]; members: string[] }
export interface Guard { denied: Prefix[]; selectors: GuardSelector[] }
export interface DesiredBgp {
  localAsn: number;
  neighbors: DesiredNeighbor[];   // sorted by address
  guard: Guard;
  /** Pods that match a selector but cannot be peered, with the reason (reported, never fatal). */
  problems: { pod: string; message: string }[];
}

const podName = (p: PodInfo): string => (p.name ? `${p.namespace ?? 'default'}/${p.name}` : p.key.slice(0, 12));

function asnOf(raw: string | undefined, fallback: number | undefined, pod: string): number | string {
  if (raw !== undefined) {
    const n = asnFromText(raw);
    if (asnProblem(n)) {
      return `pod ${pod}: annotation ${BGP_ASN_ANNOTATION}="${raw.slice(0, 20)}" is not an AS number (1-4294967294, not 23456 or 65535)`;
    }
    return n;
  }
  return fallback ?? `pod ${pod}: no peer ASN (set the ${BGP_ASN_ANNOTATION} annotation or the selector's peerAsn)`;
}

export function computeDesired(conf: BgpSyncConf, pods: PodInfo[]): DesiredBgp {
  const neighbors = new Map<string, DesiredNeighbor>();
  const problems: DesiredBgp['problems'] = [];
  const members = new Map<string, string[]>(conf.selectors.map((s) => [s.name, []]));
  for (const pod of [...pods].sort((a, b) => a.key.localeCompare(b.key))) {
    const sel = conf.selectors.find((s) => matches(s.selector, pod.labels)); // first match wins
    if (!sel) continue;
    const name = podName(pod);
    const address = pod.ips.find((ip) => ipaddr.isValid(ip));
    if (!address) {
      problems.push({ pod: name, message: `pod ${name}: no eth0 address` });
      continue;
    }
    const norm = ipaddr.parse(address).toString();
    const asn = asnOf(pod.annotations[BGP_ASN_ANNOTATION], sel.peerAsn, name);
    if (typeof asn === 'string') {
      problems.push({ pod: name, message: asn });
      continue;
    }
    const other = neighbors.get(norm);
    if (other) {
      problems.push({ pod: name, message: `pod ${name}: eth0 address ${norm} is also pod ${other.pod}'s; keeping ${other.pod}` });
      continue;
    }
    neighbors.set(norm, { address: norm, asn, selector: sel.name, pod: name });
    members.get(sel.name)!.push(norm);
  }
  const list = [...neighbors.values()].sort((a, b) => cmpAddr(a.address, b.address));
  return {
    localAsn: conf.localAsn,
    neighbors: list,
    guard: {
      denied: conf.denied,
      selectors: conf.selectors.map((s) => ({ name: s.name, allowed: s.allowed, members: members.get(s.name)!.sort(cmpAddr) })),
    },
    problems,
  };
}

export function cmpAddr(a: string, b: string): number {
  const pa = ipaddr.parse(a).toByteArray();
  const pb = ipaddr.parse(b).toByteArray();
  if (pa.length !== pb.length) return pa.length - pb.length;
  for (let i = 0; i < pa.length; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}
