// The guarded devices of this node, from the recorded attachments: what the agent's drop
// counters and `podlegs status` read.
import type { GuardedDevice } from '../../overlay/agent/guard-drops';
import type { AttachmentState } from './state';

export function guardedDevices(states: AttachmentState[]): GuardedDevice[] {
  const out: GuardedDevice[] = [];
  for (const s of states) {
    if (!s.complete) continue;
    const ref = s.pod?.namespace && s.pod.name ? { namespace: s.pod.namespace, name: s.pod.name } : undefined;
    const pod = ref ? `${ref.namespace}/${ref.name}` : s.containerId.slice(0, 12);
    for (const l of s.legs) {
      if (l.guard) out.push({ network: l.network, pod, interface: l.ifname, hostIf: l.hostIf, ...(ref ? { podRef: ref } : {}) });
      for (const v of l.trunk?.vlans ?? []) {
        if (v.guard) out.push({ network: v.network, pod, interface: `${l.ifname}.${v.vid}`, hostIf: v.hostIf, ...(ref ? { podRef: ref } : {}) });
      }
    }
  }
  return out;
}
