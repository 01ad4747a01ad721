// Where bgp-sync learns about the NF pods on this node. One interface, two sources:
//   StaticPodSource      the pods attached through podlegs on this node (the plugin's state files)
//   KubernetesPodSource  pods on this node from the API (plugged in with a PodClient by Kubernetes mode)
import * as fs from 'fs';
import * as path from 'path';
import * as ipaddr from 'ipaddr.js';
import { listStates } from '../cni/state';
import type { Labels } from '../cni/labels';
import { BGP_ASN_ANNOTATION } from '../cni/bgp-peer';

/** What bgp-sync needs to know about one pod. */
export interface PodInfo {
  key: string;                          // containerId (static) or namespace/name (Kubernetes)
  namespace?: string;
  name?: string;
  labels: Labels;
  annotations: Record<string, string>;
  ips: string[];                        // eth0 addresses, IPv4 first
}

export interface PodSource {
  readonly kind: 'static' | 'kubernetes';
  list(): Promise<PodInfo[]>;
  /** Calls onChange (possibly spuriously) when the list may have changed; returns an unsubscribe. */
  watch(onChange: () => void): () => void;
}

/** Label every static pod carries: the conflist (network) name it was attached through. */
export const NETWORK_LABEL = 'podlegs.io/network';

/**
 * Static mode: every complete attachment whose state recorded eth0 and whose netns still exists.
 * Labels come from args.cni.labels (plus podlegs.io/network); a `podlegs.io/bgp-asn` label stands
 * in for the annotation of the same name.
 */
export class StaticPodSource implements PodSource {
  readonly kind = 'static';
  constructor(private readonly stateDir: string, private readonly onBroken?: (files: string[]) => void) {}

  async list(): Promise<PodInfo[]> {
    const { states, broken } = listStates(this.stateDir);
    if (broken.length) this.onBroken?.(broken);
    const byKey = new Map<string, PodInfo>();
    for (const s of states.sort((a, b) => a.containerId.localeCompare(b.containerId) || a.ifname.localeCompare(b.ifname))) {
      const ips = s.pod?.eth0?.ips ?? [];
      if (!s.complete || ips.length === 0 || byKey.has(s.containerId)) continue;
      if (s.netns && !fs.existsSync(s.netns)) continue; // pod gone without a DEL: not a peer any more
      const labels: Labels = { ...(s.pod?.labels ?? {}), [NETWORK_LABEL]: s.network };
      const asn = labels[BGP_ASN_ANNOTATION];
      byKey.set(s.containerId, {
        key: s.containerId,
        ...(s.pod?.namespace ? { namespace: s.pod.namespace } : {}),
        ...(s.pod?.name ? { name: s.pod.name } : {}),
        labels,
        annotations: asn === undefined ? {} : { [BGP_ASN_ANNOTATION]: asn },
        ips,
      });
    }
    return [...byKey.values()];
  }

  watch(onChange: () => void): () => void {
    const dir = path.join(this.stateDir, 'attachments');
    fs.mkdirSync(dir, { recursive: true });
    const w = fs.watch(dir, { persistent: false }, (_ev, file) => {
      if (!file || String(file).endsWith('.json')) onChange();
    });
    w.on('error', () => undefined);
    return () => w.close();
  }
}

/** The parts of a Kubernetes Pod object bgp-sync reads (real Pod JSON has these paths). */
export interface K8sPod {
  metadata: { namespace?: string; name?: string; uid?: string; labels?: Labels; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[] };
}

/** A pod client for one node, provided by Kubernetes mode (list + watch with relist on its side). */
export interface PodClient {
  listPods(nodeName: string): Promise<K8sPod[]>;
  watchPods(nodeName: string, onChange: () => void): () => void;
}

/** Pod object → PodInfo; undefined for pods that cannot peer (no IP yet, host network, finished, deleting). */
export function podInfoOf(p: K8sPod): PodInfo | undefined {
  if (p.spec?.hostNetwork || p.metadata.deletionTimestamp) return undefined;
  if (p.status?.phase && p.status.phase !== 'Running' && p.status.phase !== 'Pending') return undefined;
  const ips = (p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : [])).filter((ip) => ipaddr.isValid(ip));
  if (ips.length === 0) return undefined;
  ips.sort((a, b) => Number(ipaddr.parse(a).kind() === 'ipv6') - Number(ipaddr.parse(b).kind() === 'ipv6'));
  const ns = p.metadata.namespace ?? 'default';
  const name = p.metadata.name ?? '';
  return { key: `${ns}/${name}`, namespace: ns, name, labels: p.metadata.labels ?? {}, annotations: p.metadata.annotations ?? {}, ips };
}

export class KubernetesPodSource implements PodSource {
  readonly kind = 'kubernetes';
  constructor(private readonly client: PodClient, private readonly nodeName: string) {}
  async list(): Promise<PodInfo[]> {
    return (await this.client.listPods(this.nodeName))
      .filter((p) => !p.spec?.nodeName || p.spec.nodeName === this.nodeName)
      .map(podInfoOf).filter((p): p is PodInfo => p !== undefined);
  }
  watch(onChange: () => void): () => void {
    return this.client.watchPods(this.nodeName, onChange);
  }
}
