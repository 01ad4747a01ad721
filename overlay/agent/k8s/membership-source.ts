// The agent's `kubernetes` membership source: pods (all nodes) whose
// network-status lists podlegs legs, Nodes for their VTEP addresses, and the
// podlegs NADs (an entry Multus wrote names its NAD and carries no VNI).
import * as ipaddr from 'ipaddr.js';
import { Member, MemberProblem, MembershipSource, parseMember } from '../../registry/member';
import { KubeClient } from '../../kube/http';
import { Clock, KubeObject, ListWatch } from '../../kube/list-watch';
import { legsFromStatus, NadVnis, NETWORK_STATUS_ANNOTATION } from './network-status';

export const VTEP_ANNOTATION = 'podlegs.io/vtep';

export interface PodLike extends KubeObject { spec?: { nodeName?: string }; status?: { phase?: string } }
export interface NodeLike extends KubeObject { status?: { addresses?: { type: string; address: string }[] } }
export interface NadLike extends KubeObject { spec?: { config?: string } }

/**
 * "namespace/name" → the VNIs legs on that NAD carry, for every valid podlegs NAD. Parsing a NAD
 * is the plugin's (plugin/k8s/nad.ts nadVnis); the agent is handed it (plugin/cli/agent-cmd.ts).
 */
export type NadReader = (nads: Iterable<NadLike>) => Map<string, NadVnis>;

/**
 * A node's VTEP as its agent published it (podlegs.io/vtep). Never guessed from the Node's
 * addresses: on a multi-NIC node the first InternalIP is often not the underlay.
 */
export function nodeVtep(n: NodeLike): string | undefined {
  const a = n.metadata.annotations?.[VTEP_ANNOTATION];
  return a && ipaddr.isValid(a) ? a : undefined;
}

/** Pure: members from pods and nodes (used by the source and by tests). */
export function membersFrom(pods: Iterable<PodLike>, nodes: Map<string, NodeLike>, nads: Map<string, NadVnis> = new Map()): { members: Member[]; problems: MemberProblem[] } {
  const members: Member[] = [];
  const problems: MemberProblem[] = [];
  for (const p of pods) {
    const where = `pod ${p.metadata.namespace}/${p.metadata.name}`;
    const ann = p.metadata.annotations?.[NETWORK_STATUS_ANNOTATION];
    if (!ann || !p.spec?.nodeName || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
    let legs;
    try {
      legs = legsFromStatus(ann, nads);
    } catch (e) {
      problems.push({ where, reason: (e as Error).message });
      continue;
    }
    if (legs.length === 0) continue;
    const node = nodes.get(p.spec.nodeName);
    const vtep = node ? nodeVtep(node) : undefined;
    if (!vtep) {
      const reason = !node ? `node ${p.spec.nodeName} is not known`
        : `node ${p.spec.nodeName} has not published its VTEP (annotation ${VTEP_ANNOTATION}); is the podlegs agent running there?`;
      problems.push({ where, reason });
      continue;
    }
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
  readonly nads: ListWatch<NadLike>;
  private listeners = new Set<() => void>();

  private readonly nadVnis: NadReader;

  constructor(client: KubeClient, opts: { nadVnis: NadReader; clock?: Clock; onError?: (what: string, e: Error) => void; onNads?: () => void }) {
    const { onNads, nadVnis, ...lw } = opts;
    this.nadVnis = nadVnis;
    const onChange = (): void => { for (const l of this.listeners) l(); };
    this.pods = new ListWatch<PodLike>(client, '/api/v1/pods', { ...lw, onChange });
    this.nodes = new ListWatch<NodeLike>(client, '/api/v1/nodes', { ...lw, onChange });
    this.nads = new ListWatch<NadLike>(client, '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions', {
      ...lw, onChange: () => { onNads?.(); onChange(); },
    });
  }

  start(): void { this.pods.start(); this.nodes.start(); this.nads.start(); }
  stop(): void { this.pods.stop(); this.nodes.stop(); this.nads.stop(); }

  async list(): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    if (!this.pods.synced || !this.nodes.synced || !this.nads.synced) throw new Error('Kubernetes membership not synced yet');
    const nodes = new Map<string, NodeLike>([...this.nodes.items.values()].map((n) => [n.metadata.name, n]));
    return membersFrom(this.pods.items.values(), nodes, this.nadVnis(this.nads.items.values()));
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }
}
