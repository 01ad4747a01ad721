// One Event on a pod from podlegs on this node, as Multus posts its AddedInterface. Best
// effort: an Event is a notice, so a failed POST is logged, never fatal to what it reports.
import type { KubeClient } from './http';
import type { KubeObject } from './list-watch';

export interface PodRef { namespace: string; name: string; uid?: string }
export interface PodEvent { reason: string; type: 'Normal' | 'Warning'; message: string }
export interface EventLog { warn(m: string, meta?: Record<string, unknown>): void }

export async function postPodEvent(client: KubeClient, pod: PodRef, ev: PodEvent, host: string, log: EventLog): Promise<void> {
  const now = new Date().toISOString();
  try {
    await client.request(`/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`, {
      method: 'POST',
      body: {
        apiVersion: 'v1', kind: 'Event',
        metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, ...(pod.uid ? { uid: pod.uid } : {}) },
        reason: ev.reason, type: ev.type, count: 1, firstTimestamp: now, lastTimestamp: now, message: ev.message.slice(0, 1000),
        source: { component: 'podlegs', host },
      },
    });
  } catch (e) {
    log.warn(`could not record ${ev.reason} event`, { pod: `${pod.namespace}/${pod.name}`, error: (e as Error).message });
  }
}

export const podRefOf = (o: KubeObject): PodRef => ({ namespace: o.metadata.namespace ?? 'default', name: o.metadata.name, ...(o.metadata.uid ? { uid: o.metadata.uid } : {}) });
