// bgp-sync's Kubernetes pod source: this node's pods through the same list+watch
// reflector the agent uses (relist on 410, bounded backoff).
import type { K8sPod, PodClient } from '../bgp/pods';
import { KubeClient } from '../../overlay/kube/http';
import { loadApiTarget } from '../../overlay/kube/kubeconfig';
import { KubeObject, ListWatch } from '../../overlay/kube/list-watch';

type Pod = K8sPod & KubeObject;

export function kubernetesPodClient(kubeconfig: string, onError?: (what: string, e: Error) => void): PodClient {
  const listeners = new Set<() => void>();
  let watch: Promise<ListWatch<Pod>> | undefined;
  const start = (nodeName: string): Promise<ListWatch<Pod>> => (watch ??= (async () => {
    const client = new KubeClient(await loadApiTarget(kubeconfig), () => loadApiTarget(kubeconfig));
    const selector = encodeURIComponent(`spec.nodeName=${nodeName}`);
    const lw = new ListWatch<Pod>(client, `/api/v1/pods?fieldSelector=${selector}`, { onChange: () => { for (const l of listeners) l(); }, onError });
    lw.start();
    return lw;
  })());
  return {
    async listPods(nodeName: string): Promise<K8sPod[]> {
      const lw = await start(nodeName);
      if (!lw.synced) throw new Error('pods of this node not listed from the Kubernetes API yet');
      return [...lw.items.values()];
    },
    watchPods(nodeName: string, onChange: () => void): () => void {
      listeners.add(onChange);
      const lw = start(nodeName);
      lw.catch(() => undefined); // listPods reports an unreadable kubeconfig
      return () => {
        listeners.delete(onChange);
        if (listeners.size > 0) return;
        watch = undefined; // the last watcher left: no request stays open behind it
        void lw.then((w) => w.stop(), () => undefined);
      };
    },
  };
}
