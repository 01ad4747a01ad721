// One Event on a pod, as Multus posts its AddedInterface: best effort, failures are logged.
import type { KubeClient } from '../../overlay/kube/http';
import type { KubeObject } from '../../overlay/kube/list-watch';

export interface EventLog { warn(m: string, meta?: Record<string, unknown>): void }

export async function postPodEvent(client: KubeClient, pod: KubeObject, e: { reason: string; type: 'Normal' | 'Warning'; message: string; host: string }, log: EventLog): Promise<void> {
  const ns = pod.metadata.namespace ?? 'default';
  const now = new Date().toISOString();
  try {
    await client.request(`/api/v1/namespaces/${ns}/events`, {
      method: 'POST',
      body: {
        apiVersion: 'v1', kind: 'Event',
        metadata: { generateName: `${pod.metadata.name}.`, namespace: ns },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, namespace: ns, uid: pod.metadata.uid },
        reason: e.reason, type: e.type, count: 1, firstTimestamp: now, lastTimestamp: now, message: e.message,
        source: { component: 'podlegs', host: e.host },
      },
    });
  } catch (err) {
    log.warn(`could not record ${e.reason} event`, { pod: `${ns}/${pod.metadata.name}`, error: (err as Error).message });
  }
}
