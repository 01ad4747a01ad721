// Glue between the CNI verbs and the BGP pieces: at ADD, remember eth0 (from prevResult) and the
// pod's labels in the attachment state and write the `podlegs.io/bgp-peer` file; at DEL/GC or a
// failed ADD, remove that file again.
import type { PluginConf } from './config';
import type { CniEnv } from './env';
import type { AttachmentState } from './state';
import type { Log } from '../log';
import { bgpPeerOf, eth0FromResult, removeBgpPeerFile, writeBgpPeerFile } from './bgp-peer';

/** Node ASN for the peer record: bgp.localAsn, else kubernetes.nodeAsn. */
function nodeAsn(conf: PluginConf): number | undefined {
  // kubernetes.nodeAsn belongs to Kubernetes mode (plugin/k8s), read here without depending on it.
  const k8s = (conf as { kubernetes?: { nodeAsn?: number } }).kubernetes;
  return conf.bgp?.localAsn ?? k8s?.nodeAsn;
}

/** Fills state.pod and writes <stateDir>/bgp-peer/<containerId>.json when eth0 has a gateway. */
export function recordBgpPeer(conf: PluginConf, env: CniEnv, state: AttachmentState, log?: Log): void {
  const eth0 = eth0FromResult(conf.prevResult, env.ifname);
  const labels = conf.labels;
  const ns = env.args.get('K8S_POD_NAMESPACE');
  const name = env.args.get('K8S_POD_NAME');
  const uid = env.args.get('K8S_POD_UID');
  if (!eth0 && !labels && !ns) return;
  state.pod = { ...(eth0 ? { eth0 } : {}), ...(labels ? { labels } : {}), ...(ns ? { namespace: ns } : {}), ...(name ? { name } : {}), ...(uid ? { uid } : {}) };
  const peer = bgpPeerOf(eth0, nodeAsn(conf));
  if (peer) {
    const file = writeBgpPeerFile(conf.stateDir, env.containerId, peer);
    log?.info('bgp peer recorded', { file, peer });
  }
}

/** Removes the peer file this attachment wrote (only attachments that saw eth0 wrote one). */
export function forgetBgpPeer(stateDir: string, state: AttachmentState): void {
  if (state.pod?.eth0?.gateway) removeBgpPeerFile(stateDir, state.containerId);
}
