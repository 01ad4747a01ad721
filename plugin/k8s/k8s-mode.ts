// Kubernetes mode around ADD: one GET of the pod before, one merge-PATCH after.
import { CniError, Code } from '../cni/errors';
import type { CmdContext } from '../cni/context';
import type { Publish } from '../cni/add';
import { ADD_API_BUDGET_MS, ApiBudget, KubeClient } from '../../overlay/kube/http';
import { loadApiTarget } from '../../overlay/kube/kubeconfig';
import { apiFailure, podRef, PodObject, readNodeAsn, resolveSelections } from './pod-legs';
import { buildNetworkStatus } from './network-status';
import { NETWORK_STATUS_ANNOTATION } from '../../overlay/agent/k8s/network-status';
import { bgpPeerOf, eth0FromResult } from '../cni/bgp-peer';

export const BGP_PEER_ANNOTATION = 'podlegs.io/bgp-peer';
/** The container ID of the ADD that wrote network-status (plugin/hotplug/sandbox.ts reads it). */
export const SANDBOX_ANNOTATION = 'podlegs.io/sandbox';

/** The ADD's client: every request through it shares one deadline (ADD_API_BUDGET_MS). */
export async function kubeClient(kubeconfig: string): Promise<KubeClient> {
  try {
    return new KubeClient(await loadApiTarget(kubeconfig), undefined, new ApiBudget(ADD_API_BUDGET_MS));
  } catch (e) {
    throw new CniError(Code.NotAvailable, `cannot use kubeconfig ${kubeconfig}: ${(e as Error).message}`);
  }
}

/** Resolves the pod's selections into conf.networks/conf.legs; returns how to publish the outcome. */
export async function prepareKubernetes(ctx: CmdContext, client?: KubeClient): Promise<{ publish: Publish; client: KubeClient }> {
  const { conf, env } = ctx;
  const ref = podRef(env);
  const api = client ?? (await kubeClient(conf.kubernetes!.kubeconfig));
  const podPath = `/api/v1/namespaces/${ref.namespace}/pods/${ref.name}`;
  let pod: PodObject;
  try {
    pod = await api.request<PodObject>(podPath);
  } catch (e) {
    throw apiFailure(e, `pod ${ref.namespace}/${ref.name}`);
  }
  if (ref.uid && pod.metadata.uid && ref.uid !== pod.metadata.uid) {
    throw new CniError(Code.TryAgainLater, `pod ${ref.namespace}/${ref.name} in the API has UID ${pod.metadata.uid}, the runtime asked for ${ref.uid}`);
  }
  const { networks, legs, trunks } = await resolveSelections(conf, api, pod);
  conf.networks = networks;
  conf.legs = legs;
  if (trunks.size) conf.trunks = trunks;

  const publish: Publish = async (_result, state) => {
    if (conf.kubernetes!.multus) return; // Multus writes network-status itself
    const status = buildNetworkStatus(conf.name, conf.prevResult, state.legs.map((l) => ({
      network: l.network, ifname: l.ifname, mac: l.mac, mtu: l.mtu, ips: l.ips, vni: l.vni,
      ...(l.trunk ? { vlans: l.trunk.vlans.map((v) => ({ vid: v.vid, vni: v.vni })) } : {}),
    })));
    // The sandbox whose legs network-status lists: the agent hot-plugs into that one only.
    const annotations: Record<string, string> = { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status, null, 4), [SANDBOX_ANNOTATION]: env.containerId };
    // The same peer as the static-mode file (plugin/cni/bgp-record.ts): eth0's gateway and the node
    // ASN, from the config or else the node's podlegs.io/bgp-asn label (mirrored by the agent).
    const asn = conf.bgp?.localAsn ?? conf.kubernetes!.nodeAsn ?? readNodeAsn(conf.stateDir);
    const peer = bgpPeerOf(eth0FromResult(conf.prevResult, env.ifname), asn);
    if (peer) annotations[BGP_PEER_ANNOTATION] = JSON.stringify(peer);
    try {
      await api.request(podPath, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { annotations } } });
    } catch (e) {
      throw apiFailure(e, `network-status of pod ${ref.namespace}/${ref.name}`);
    }
  };
  return { publish, client: api };
}
