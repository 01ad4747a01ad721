// Trunk VLAN edits in Kubernetes mode: when a trunk NAD changes, the agent resolves it from its
// NAD watch with ADD's rules (resolveTrunkNad: referenced NADs, namespaces), the generic part
// (plugin/cni/trunk-edit.ts) rewires this node's running trunk legs of it, and each pod's
// network-status gets the new `podlegs.io/vlans` (merge-patch, resourceVersion-guarded) so
// every node's agent floods for the added VLANs' VNIs and stops for the removed ones. An
// Event on the pod says what changed, or why not.
import type { KubernetesConf } from '../cni/config';
import { invalidConfig } from '../cni/errors';
import { isTrunkEntry } from '../cni/trunk-config';
import type { EditOutcome, TrunkLookup } from '../cni/trunk-edit';
import type { AttachmentState, LegState } from '../cni/state';
import { ApiError, KubeClient } from '../../overlay/kube/http';
import { NadObject, podlegsNadConfig } from './nad';
import { NETWORK_STATUS_ANNOTATION, NetworkStatus, VLANS_KEY } from '../../overlay/agent/k8s/network-status';
import { PodObject, resolveTrunkNad } from './pod-legs';

const keyOf = (n: NadObject): string => `${n.metadata.namespace ?? 'default'}/${n.metadata.name}`;

/**
 * The trunk networks as the NADs say now, for the attachments of Kubernetes mode (legs keyed
 * "ns/name"). A deleted NAD, or one that is no longer a podlegs trunk, is no VLAN edit: the
 * running legs stay as they are (DEL needs only the state).
 */
export function nadTrunkLookup(nads: Iterable<NadObject>, k8s: Pick<KubernetesConf, 'globalNamespaces'>): TrunkLookup {
  const byKey = new Map([...nads].map((n) => [keyOf(n), n]));
  return (network: string, s: AttachmentState) => {
    const nad = network.includes('/') ? byKey.get(network) : undefined;
    if (!nad) return undefined;
    const c = podlegsNadConfig(nad, network, true);
    if (!c || !isTrunkEntry(c.spec)) return undefined;
    return resolveTrunkNad(network, c.spec, s.pod?.namespace ?? network.split('/')[0], k8s, (ns, name) => {
      const ref = byKey.get(`${ns}/${name}`);
      if (!ref) throw invalidConfig(`NetworkAttachmentDefinition ${ns}/${name} does not exist`);
      return ref;
    });
  };
}

/**
 * The trunk's entry of the pod's network-status gets the leg's VLANs. An entry without
 * podlegs' VLAN key (Multus wrote it) is left alone: agents read that trunk's VLANs from the
 * NAD itself. A conflicting write (409) is read again and retried.
 */
export async function publishTrunkVlans(client: KubeClient, s: AttachmentState, leg: LegState): Promise<boolean> {
  const { namespace, name } = s.pod ?? {};
  if (!namespace || !name) throw new Error(`attachment ${s.containerId} records no pod`);
  const podPath = `/api/v1/namespaces/${namespace}/pods/${name}`;
  for (let attempt = 1; ; attempt++) {
    const pod = await client.request<PodObject>(podPath);
    const list = JSON.parse(pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION] ?? '[]') as NetworkStatus[];
    // The leg's own entry: a pod of that name recreated elsewhere has another MAC.
    const entry = Array.isArray(list) ? list.find((e) => e?.name === leg.network && e.interface === leg.ifname && e.mac === leg.mac) : undefined;
    if (!entry || entry[VLANS_KEY] === undefined) return false;
    entry[VLANS_KEY] = leg.trunk!.vlans.map((v) => ({ vid: v.vid, vni: v.vni }));
    try {
      await client.request(podPath, {
        method: 'PATCH', contentType: 'application/merge-patch+json',
        body: { metadata: { resourceVersion: pod.metadata.resourceVersion, annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(list, null, 4) } } },
      });
      return true;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409) || attempt >= 5) throw e;
    }
  }
}

export interface PodEvent { reason: string; type: 'Normal' | 'Warning'; message: string }

/** One Event on a pod, from podlegs on this node. */
export async function postPodEvent(client: KubeClient, pod: { namespace: string; name: string; uid?: string }, host: string, ev: PodEvent): Promise<void> {
  const now = new Date().toISOString();
  await client.request(`/api/v1/namespaces/${pod.namespace}/events`, {
    method: 'POST',
    body: {
      apiVersion: 'v1', kind: 'Event',
      metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, ...(pod.uid ? { uid: pod.uid } : {}) },
      reason: ev.reason, type: ev.type, count: 1, firstTimestamp: now, lastTimestamp: now, message: ev.message,
      source: { component: 'podlegs', host },
    },
  });
}

/** The Event an edit outcome gets. */
export function editEvent(o: EditOutcome): PodEvent {
  const what = `${o.leg.ifname} (${o.leg.network})`;
  if ('plan' in o) {
    const p = o.plan;
    const parts = [p.add.length ? `added ${p.add.map((v) => v.vid).join(',')}` : '', p.remove.length ? `removed ${p.remove.map((v) => v.vid).join(',')}` : '',
      p.retarget.length ? `moved ${p.retarget.map((r) => `${r.to.vid}→${r.to.network}`).join(',')}` : ''].filter(Boolean);
    return { reason: 'TrunkVlansChanged', type: 'Normal', message: `VLANs of trunk ${what} now ${p.vlans.map((v) => v.vid).join(',')}: ${parts.join('; ')} (podlegs)` };
  }
  const why = 'refused' in o ? o.refused.message : o.failed.message;
  return { reason: 'TrunkVlansNotChanged', type: 'Warning', message: `trunk ${what}: ${why}`.slice(0, 1000) };
}

export interface TrunkEditLog { warn(m: string, meta?: Record<string, unknown>): void }

/** After runTrunkEdits: network-status of every changed leg, then an Event per outcome. */
export async function publishEdits(client: KubeClient, outcomes: EditOutcome[], o: { host: string; uidOf: (ns: string, name: string) => string | undefined; log: TrunkEditLog }): Promise<void> {
  for (const out of outcomes) {
    const { namespace, name } = out.state.pod ?? {};
    if (!namespace || !name) continue;
    try {
      if ('plan' in out) await publishTrunkVlans(client, out.state, out.leg);
    } catch (e) {
      // The kernel has the new VLANs; other nodes learn them when network-status is written.
      o.log.warn('could not write the trunk\'s new VLANs into network-status; other nodes keep flooding for the old ones', { pod: `${namespace}/${name}`, error: (e as Error).message });
    }
    try {
      await postPodEvent(client, { namespace, name, uid: o.uidOf(namespace, name) }, o.host, editEvent(out));
    } catch (e) {
      o.log.warn('could not record the trunk edit event', { pod: `${namespace}/${name}`, error: (e as Error).message });
    }
  }
}
