// The agent's Kubernetes side: pod/node membership, a NAD cache on disk for
// the plugin (so an ADD costs one GET and one PATCH), and AddedInterface
// events for the legs of this node's pods (kept off the CNI hot path).
import { asnFromText, asnProblem } from '../../values';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../../fs/atomic-write';
import { KubeClient } from '../../kube/http';
import { ListWatch, Clock } from '../../kube/list-watch';
import { KubernetesMembership, NadLike, NadReader, PodLike, VTEP_ANNOTATION } from './membership-source';
import { legsFromStatus, NETWORK_STATUS_ANNOTATION } from './network-status';
import { nadCachePath, NODE_ASN_LABEL, nodeAsnPath } from './node-files';
import { loadApiTarget } from '../../kube/kubeconfig';

export interface NodeSideLog { info(m: string, meta?: Record<string, unknown>): void; warn(m: string, meta?: Record<string, unknown>): void }

export interface NodeSideOptions {
  stateDir: string; nodeName: string; vtep: string; log: NodeSideLog; nadVnis: NadReader; clock?: Clock;
  /** After each NAD event, once the NADs are listed (trunk VLAN edits follow them). */
  onNads?: () => void;
}

export class KubernetesNodeSide {
  readonly membership: KubernetesMembership;
  readonly nads: ListWatch<NadLike>;
  private readonly seenLegs = new Set<string>();
  private eventsPrimed = false;
  private publishing = false;

  private constructor(readonly client: KubeClient, private readonly o: NodeSideOptions) {
    const onError = (what: string, e: Error): void => o.log.warn('kubernetes watch problem', { what, error: e.message });
    this.membership = new KubernetesMembership(client, { nadVnis: o.nadVnis, clock: o.clock, onError, onNads: () => { this.writeNadCache(); if (this.nads.synced) o.onNads?.(); } });
    this.nads = this.membership.nads;
    this.membership.watch(() => { this.writeNodeAsn(); void this.publishVtep(); void this.emitEvents(); });
  }

  static async create(kubeconfig: string, o: NodeSideOptions): Promise<KubernetesNodeSide> {
    return new KubernetesNodeSide(new KubeClient(await loadApiTarget(kubeconfig), () => loadApiTarget(kubeconfig)), o);
  }

  start(): void { this.membership.start(); }
  stop(): void { this.membership.stop(); }

  /** Mirrors podlegs NADs into stateDir/nads/<ns>/<name>.json; warns about VNIs claimed twice. */
  private writeNadCache(): void {
    const root = path.join(this.o.stateDir, 'nads');
    const keep = new Set<string>();
    const byVni = new Map<number, string>();
    for (const nad of this.nads.items.values()) {
      let cfg: { type?: unknown; vni?: unknown };
      try {
        cfg = JSON.parse(nad.spec?.config ?? '') as typeof cfg;
      } catch {
        continue;
      }
      if (cfg.type !== 'podlegs') continue;
      const ns = nad.metadata.namespace ?? 'default';
      const key = `${ns}/${nad.metadata.name}`;
      if (typeof cfg.vni === 'number') {
        const other = byVni.get(cfg.vni);
        if (other) this.o.log.warn('two NetworkAttachmentDefinitions claim one VNI; pods selecting either are refused', { vni: cfg.vni, nads: [other, key] });
        byVni.set(cfg.vni, key);
      }
      const file = nadCachePath(this.o.stateDir, ns, nad.metadata.name);
      keep.add(file);
      writeFileAtomic(file, JSON.stringify(nad));
    }
    if (!fs.existsSync(root)) return;
    for (const ns of fs.readdirSync(root)) {
      for (const f of fs.readdirSync(path.join(root, ns))) {
        const file = path.join(root, ns, f);
        if (!keep.has(file)) fs.rmSync(file, { force: true });
      }
    }
  }

  /** This node's `podlegs.io/bgp-asn` label, for the plugin's podlegs.io/bgp-peer annotation. */
  private writeNodeAsn(): void {
    const me = this.membership.nodes.items.get(this.o.nodeName);
    if (!me) return;
    const file = nodeAsnPath(this.o.stateDir);
    const label = me.metadata.labels?.[NODE_ASN_LABEL];
    const asn = label === undefined ? undefined : asnFromText(label);
    if (asn === undefined || asnProblem(asn)) {
      if (label !== undefined) this.o.log.warn('node label is not an AS number; ignored', { label: NODE_ASN_LABEL, value: label });
      fs.rmSync(file, { force: true });
      return;
    }
    writeFileAtomic(file, JSON.stringify({ asn }));
  }

  /**
   * Publishes this node's VTEP on its Node (podlegs.io/vtep): the one address the other agents
   * flood to. Re-applied whenever the Node is seen without it (a Node re-created, an edit).
   */
  private async publishVtep(): Promise<void> {
    const me = this.membership.nodes.items.get(this.o.nodeName);
    if (!me || me.metadata.annotations?.[VTEP_ANNOTATION] === this.o.vtep || this.publishing) return;
    this.publishing = true;
    try {
      await this.client.request(`/api/v1/nodes/${encodeURIComponent(this.o.nodeName)}`, {
        method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { annotations: { [VTEP_ANNOTATION]: this.o.vtep } } },
      });
      this.o.log.info('published this node\'s VTEP', { node: this.o.nodeName, annotation: VTEP_ANNOTATION, vtep: this.o.vtep });
    } catch (e) {
      this.o.log.warn('could not publish this node\'s VTEP; other nodes cannot reach its legs until it is', { node: this.o.nodeName, error: (e as Error).message });
    } finally {
      this.publishing = false;
    }
  }

  /** A Warning event on the pod whose leg guard dropped frames (the caller rate-limits). */
  async warnSpoofing(ref: { namespace: string; name: string }, ifname: string, network: string, drops: number): Promise<void> {
    const pod = [...this.membership.pods.items.values()].find((p) => p.metadata.namespace === ref.namespace && p.metadata.name === ref.name);
    const now = new Date().toISOString();
    try {
      await this.client.request(`/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/events`, {
        method: 'POST',
        body: {
          apiVersion: 'v1', kind: 'Event',
          metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', name: ref.name, namespace: ref.namespace, ...(pod?.metadata.uid ? { uid: pod.metadata.uid } : {}) },
          reason: 'SpoofedFramesDropped', type: 'Warning', count: 1, firstTimestamp: now, lastTimestamp: now,
          message: `podlegs dropped ${drops} frame(s) sent on ${ifname} (network ${network}) with a source MAC, ARP sender or ND address the leg may not use`,
          source: { component: 'podlegs', host: this.o.nodeName },
        },
      });
    } catch (e) {
      this.o.log.warn('could not record SpoofedFramesDropped event', { pod: `${ref.namespace}/${ref.name}`, error: (e as Error).message });
    }
  }

  /** One AddedInterface event per new leg of a pod on this node. */
  private async emitEvents(): Promise<void> {
    if (!this.membership.pods.synced) return;
    const fresh: { pod: PodLike; ifname: string; network: string }[] = [];
    for (const pod of this.membership.pods.items.values()) {
      if (pod.spec?.nodeName !== this.o.nodeName) continue;
      let legs: ReturnType<typeof legsFromStatus>;
      try {
        // Only entries podlegs wrote: for the legs of a Multus delegate, Multus posts the event itself.
        legs = legsFromStatus(pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]);
      } catch {
        continue; // reported by the membership source
      }
      for (const l of legs) {
        const key = `${pod.metadata.uid}/${l.ifname}/${l.mac}`; // a leg unplugged and plugged again is new
        if (this.seenLegs.has(key)) continue;
        this.seenLegs.add(key);
        fresh.push({ pod, ifname: l.ifname, network: l.network });
      }
    }
    if (!this.eventsPrimed) { this.eventsPrimed = true; return; } // legs that existed before this agent started
    for (const f of fresh) {
      const now = new Date().toISOString();
      const ns = f.pod.metadata.namespace ?? 'default';
      try {
        await this.client.request(`/api/v1/namespaces/${ns}/events`, {
          method: 'POST',
          body: {
            apiVersion: 'v1', kind: 'Event',
            metadata: { generateName: `${f.pod.metadata.name}.`, namespace: ns },
            involvedObject: { apiVersion: 'v1', kind: 'Pod', name: f.pod.metadata.name, namespace: ns, uid: f.pod.metadata.uid },
            reason: 'AddedInterface', type: 'Normal', count: 1, firstTimestamp: now, lastTimestamp: now,
            message: `Add ${f.ifname} from ${f.network} (podlegs)`,
            source: { component: 'podlegs', host: this.o.nodeName },
          },
        });
      } catch (e) {
        this.o.log.warn('could not record AddedInterface event', { pod: `${ns}/${f.pod.metadata.name}`, error: (e as Error).message });
      }
    }
  }
}
