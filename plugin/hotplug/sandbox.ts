// Which recorded attachment a running pod's hot-plug may touch: the one its last ADD published
// (SANDBOX_ANNOTATION = that ADD's container ID), of this pod object (UID), whose netns path
// still names the netns ADD saw. A sandbox that is gone or was recreated gets nothing: its new
// ADD attaches the legs, as the runtime does today.
import { netnsId } from '../../overlay/kernel/netns';
import type { AttachmentState } from '../state';
import type { KubeObject } from '../k8s/list-watch';
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
  if (!s.sandbox) return { problem: `sandbox ${sandbox} was attached by a podlegs without hot-plug (no netns identity recorded): recreate the pod` };
  const id = netnsId(s.netns);
  if (id !== s.sandbox.netnsId) return { problem: `sandbox ${sandbox}: network namespace ${s.netns} ${id ? 'is now another namespace' : 'is gone'}; nothing is attached to a stale sandbox` };
  return { state: s };
}
