// The agent's `kubernetes` membership source: pods (all nodes) whose
// network-status lists podlegs legs, and Nodes for their VTEP addresses.
import * as ipaddr from 'ipaddr.js';
import { Member, MemberProblem, MembershipSource, parseMember } from '../../overlay/registry/member';
import { KubeClient } from './http';
import { Clock, KubeObject, ListWatch } from './list-watch';
import { legsFromStatus, NETWORK_STATUS_ANNOTATION } from './network-status';

export const VTEP_ANNOTATION = 'podlegs.io/vtep';

export interface PodLike extends KubeObject { spec?: { nodeName?: string }; status?: { phase?: string } }
export interface NodeLike extends KubeObject { status?: { addresses?: { type: string; address: string }[] } }

/** A node's VTEP: the podlegs.io/vtep annotation, else its first InternalIP. */
export function nodeVtep(n: NodeLike): string | undefined {
  const a = n.metadata.annotations?.[VTEP_ANNOTATION];
  if (a) return ipaddr.isValid(a) ? a : undefined;
  return n.status?.addresses?.find((x) => x.type === 'InternalIP')?.address;
}

/** Pure: members from pods and nodes (used by the source and by tests). */
export function membersFrom(pods: Iterable<PodLike>, nodes: Map<string, NodeLike>): { members: Member[]; problems: MemberProblem[] } {
  const members: Member[] = [];
  const problems: MemberProblem[] = [];
  for (const p of pods) {
    const where = `pod ${p.metadata.namespace}/${p.metadata.name}`;
    const ann = p.metadata.annotations?.[NETWORK_STATUS_ANNOTATION];
    if (!ann || !p.spec?.nodeName || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
    let legs;
    try {
      legs = legsFromStatus(ann);
    } catch (e) {
      problems.push({ where, reason: (e as Error).message });
      continue;
    }
    if (legs.length === 0) continue;
    const node = nodes.get(p.spec.nodeName);
    const vtep = node ? nodeVtep(node) : undefined;
    if (!vtep) { problems.push({ where, reason: `node ${p.spec.nodeName} has no usable VTEP address` }); continue; }
    for (const l of legs) {
      const m = parseMember({ vni: l.vni, vtep, mac: l.mac, owner: `${p.metadata.uid ?? where}/${l.ifname}`, network: l.network });
      if (typeof m === 'string') problems.push({ where: `${where} ${l.ifname}`, reason: m });
      else members.push(m);
    }
  }
  return { members, problems };
}

export class KubernetesMembership implements MembershipSource {
  readonly pods: ListWatch<PodLike>;
  readonly nodes: ListWatch<NodeLike>;
  private listeners = new Set<() => void>();

  constructor(client: KubeClient, opts: { clock?: Clock; onError?: (what: string, e: Error) => void } = {}) {
    const onChange = (): void => { for (const l of this.listeners) l(); };
    this.pods = new ListWatch<PodLike>(client, '/api/v1/pods', { ...opts, onChange });
    this.nodes = new ListWatch<NodeLike>(client, '/api/v1/nodes', { ...opts, onChange });
  }

  start(): void { this.pods.start(); this.nodes.start(); }
  stop(): void { this.pods.stop(); this.nodes.stop(); }

  async list(): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    if (!this.pods.synced || !this.nodes.synced) throw new Error('Kubernetes membership not synced yet');
    const nodes = new Map<string, NodeLike>([...this.nodes.items.values()].map((n) => [n.metadata.name, n]));
    return membersFrom(this.pods.items.values(), nodes);
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }
}
