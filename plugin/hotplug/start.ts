// Wiring hot-plug into the agent's Kubernetes side: its pod and NAD reflectors drive it, plus
// a periodic run (a change that arrived while an ADD was finishing is picked up then).
import type { PluginConf } from '../cni/config';
import type { Log } from '../log';
import { KubeClient } from '../../overlay/kube/http';
import { loadApiTarget } from '../../overlay/kube/kubeconfig';
import type { KubernetesNodeSide } from '../../overlay/agent/k8s/node-side';
import { HotPlug } from './controller';

const PERIOD_MS = 10_000;

/** undefined with Multus (kubernetes.multus): its dynamic-networks controller owns the annotation then. */
export async function startHotPlug(conf: PluginConf, nodeName: string, side: KubernetesNodeSide, log: Log, onLegsChanged: () => void): Promise<{ stop(): Promise<void> } | undefined> {
  const k8s = conf.kubernetes;
  if (!k8s || k8s.multus) return undefined;
  const client = new KubeClient(await loadApiTarget(k8s.kubeconfig), () => loadApiTarget(k8s.kubeconfig));
  const pods = side.membership.pods;
  const hp = new HotPlug({
    client, conf, nodeName, log, onLegsChanged,
    pods: () => (pods.synced ? pods.items.values() : []),
    nadVersion: () => [...side.nads.items.values()].map((n) => n.metadata.resourceVersion).join(','),
  });
  const unwatch = side.membership.watch(() => hp.kick());
  const timer = setInterval(() => hp.kick(), PERIOD_MS);
  timer.unref();
  return { stop: async () => { unwatch(); clearInterval(timer); await hp.stop(); } };
}
