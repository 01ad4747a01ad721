// Which recorded attachment a running pod's hot-plug may touch: the one its last ADD published
// (SANDBOX_ANNOTATION = that ADD's container ID), of this pod object (UID), whose netns path
// still names the netns ADD saw. A sandbox that is gone or was recreated gets nothing: its new
// ADD attaches the legs, as the runtime does today.
import { staleSandbox } from '../cni/leg-set';
import type { AttachmentState } from '../cni/state';
import type { KubeObject } from '../../overlay/kube/list-watch';
import { SANDBOX_ANNOTATION } from '../k8s/k8s-mode';

export type SandboxMatch = { state: AttachmentState } | { problem: string } | undefined;

/** undefined: no podlegs attachment for this pod on this node (nothing to do). */
export function currentAttachment(pod: KubeObject, states: AttachmentState[]): SandboxMatch {
  const sandbox = pod.metadata.annotations?.[SANDBOX_ANNOTATION];
  if (!sandbox) return undefined;
  const s = states.find((x) => x.containerId === sandbox && x.registry.type === 'kubernetes');
  if (!s) return undefined; // recorded on another node, or DELed: not ours to change
  if (!s.complete) return undefined; // its ADD is still running (it publishes before it commits)
  if (s.pod?.uid && pod.metadata.uid && s.pod.uid !== pod.metadata.uid) return { problem: `sandbox ${sandbox} belongs to an earlier pod object (UID ${s.pod.uid}, now ${pod.metadata.uid})` };
  const stale = staleSandbox(s);
  return stale ? { problem: stale } : { state: s };
}
