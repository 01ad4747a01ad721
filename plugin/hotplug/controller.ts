// Hot-plug in Kubernetes mode, run by the node agent: when a running pod's networks annotation
// gains an element, the leg is attached in the pod's recorded netns through ADD's own leg code
// (plugin/cni/leg-set.ts) with ADD's validation (resolveSelections: NAD type, namespace rules,
// VNI and name clashes); when an element disappears, its leg is detached. network-status follows
// (merge-patch), so membership follows on every node; AddedInterface comes from the agent's
// node side like for ADD's legs, RemovedInterface and refusals (Warning) from here.
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { legMtuLimit, MtuLimit, Underlay } from '../../overlay/underlay';
import type { PluginConf } from '../cni/config';
import { CniError, Code } from '../cni/errors';
import { CniVersion } from '../cni/versions';
import { attachLegSet, detachLegSet, planLeg, sandboxEnv } from '../cni/leg-set';
import { nodeUnderlay, openPod } from '../cni/common';
import type { Log } from '../log';
import { AttachmentState, listStates, readState } from '../cni/state';
import { ApiError, KubeClient } from '../../overlay/kube/http';
import type { KubeObject } from '../../overlay/kube/list-watch';
import { NETWORK_STATUS_ANNOTATION, NetworkStatus } from '../../overlay/agent/k8s/network-status';
import { NETWORKS_ANNOTATION, parseSelections, Selection } from '../k8s/selection';
import { PodObject, resolveSelections, ResolvedLegs } from '../k8s/pod-legs';
import { planHotPlug, toElement } from './plan';
import { mergeStatus, parseStatus, sameJson, STALE_KEY } from './status';
import { staleMessage, staleReasons } from './nad-edits';
import { currentAttachment } from './sandbox';
import { postPodEvent } from './pod-event';

/** A transient failure (API, node lock, kernel) is tried again after this long (the periodic run). */
const RETRY_MS = 9_000; // just under the periodic run (start.ts)

export interface HotPod extends KubeObject { spec?: { nodeName?: string }; status?: { phase?: string } }

export interface HotPlugOptions {
  client: KubeClient;
  conf: PluginConf;           // the agent's: underlay, stateDir, kubernetes (globalNamespaces)
  nodeName: string;
  pods: () => Iterable<HotPod>;
  /** Changes whenever a NAD changes: a refused element is tried again then (e.g. its NAD now exists). */
  nadVersion: () => string;
  /** After a leg was attached or detached: the agent reconciles that segment's flood list now. */
  onLegsChanged?: () => void;
  log: Log;
}

export class HotPlug {
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** "<pod uid>|<topic>" → the message last reported, so a refusal is reported once, not every run. */
  private reported = new Map<string, string>();
  /** "<pod uid>|add <element>" or "<pod uid>|detach" → when a transiently failed change may be tried again. */
  private readonly retryAt = new Map<string, number>();
  /** pod uid → what the pod, its NADs and its record were at its last complete sync. */
  private readonly synced = new Map<string, string>();
  private u?: Underlay;

  constructor(private readonly o: HotPlugOptions) {}

  /** Runs soon; a kick during a run makes one more run. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = (async () => {
      do {
        this.again = false;
        await this.runOnce().catch((e: Error) => this.o.log.warn('hot-plug run failed', { error: e.message }));
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = undefined; });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Resolves when no run is in progress (tests, the benchmark). */
  idle(): Promise<void> { return this.running ?? Promise.resolve(); }

  private async runOnce(): Promise<void> {
    const { states } = listStates(this.o.conf.stateDir);
    const live = new Set<string>();
    for (const pod of this.o.pods()) {
      if (pod.spec?.nodeName !== this.o.nodeName || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      if ((pod.metadata as { deletionTimestamp?: string }).deletionTimestamp) continue;
      live.add(pod.metadata.uid ?? '');
      const m = currentAttachment(pod, states);
      if (!m) continue;
      if ('problem' in m) { await this.report(pod, 'sandbox', m.problem); continue; }
      this.reported.delete(`${pod.metadata.uid}|sandbox`);
      // The agent sees every pod change in the cluster: a pod whose object, NADs and record are
      // as they were when it was last synced needs nothing (no netns is entered for it).
      const seen = `${pod.metadata.resourceVersion}|${this.o.nadVersion()}|${JSON.stringify(m.state.legs.map((l) => [l.ifname, l.pending]))}`;
      if (this.synced.get(pod.metadata.uid ?? '') === seen) continue;
      if (await this.syncPod(pod, m.state)) this.synced.set(pod.metadata.uid ?? '', seen);
      else this.synced.delete(pod.metadata.uid ?? '');
    }
    for (const k of this.reported.keys()) if (!live.has(k.split('|')[0])) this.reported.delete(k);
    for (const k of this.synced.keys()) if (!live.has(k)) this.synced.delete(k);
    for (const k of this.retryAt.keys()) if (!live.has(k.split('|')[0])) this.retryAt.delete(k);
  }

  /** True when the pod is in sync (a refusal counts: it is reported and waits for a change). */
  private async syncPod(pod: HotPod, recorded: AttachmentState): Promise<boolean> {
    const where = `${pod.metadata.namespace}/${pod.metadata.name}`;
    let selections: Selection[];
    try {
      selections = parseSelections(pod.metadata.annotations?.[NETWORKS_ANNOTATION]);
    } catch (e) {
      await this.report(pod, 'annotation', `${(e as Error).message}; nothing changed`);
      return true;
    }
    this.reported.delete(`${pod.metadata.uid}|annotation`);
    const podNs = pod.metadata.namespace ?? 'default';
    const committed = recorded.legs.filter((l) => !l.pending);
    let plan = planHotPlug(selections, committed, podNs, []);
    // Only a new element without interface (planHotPlug names it: a new object) needs the pod's own names.
    if (plan.add.some((a) => !selections.includes(a))) {
      plan = planHotPlug(selections, committed, podNs, await this.podLinks(recorded.netns));
    }
    let ok = true;
    const detachKey = `${pod.metadata.uid}|detach`;
    if (plan.remove.length > 0 || recorded.legs.some((l) => l.pending)) {
      if ((this.retryAt.get(detachKey) ?? 0) > Date.now()) ok = false;
      else if (!(ok = await this.detach(pod, recorded, plan.remove.map((l) => l.ifname)))) this.retryAt.set(detachKey, Date.now() + RETRY_MS);
      else this.retryAt.delete(detachKey);
    }
    const kept: Selection[] = plan.keep.map((k) => ({ ...k.sel, interface: k.leg.ifname }));
    for (const sel of plan.add) {
      const sig = JSON.stringify(toElement(sel));
      const topic = `add ${sig}`;
      const key = `${pod.metadata.uid}|${topic}`;
      const tried = this.reported.get(key);
      if (tried !== undefined && tried.startsWith(`${this.o.nadVersion()}|`)) continue; // refused before, nothing changed since
      if ((this.retryAt.get(key) ?? 0) > Date.now()) { ok = false; continue; } // failed a moment ago: not at every pod event
      try {
        await this.attach(pod, recorded, kept, sel);
        kept.push(sel);
        this.reported.delete(key);
        this.retryAt.delete(key);
      } catch (e) {
        // A refusal (bad element, name clash, IPAM said no) waits for a change of the pod or a NAD;
        // a transient failure (API, node lock, kernel) is tried again on the next run.
        const refusal = e instanceof CniError && e.code !== Code.TryAgainLater;
        const reason = e instanceof CniError ? e.message : `${(e as Error).message} (tried again)`;
        const message = `${sel.namespace ? `${sel.namespace}/` : ''}${sel.name}@${sel.interface} not attached: ${reason}`;
        if (refusal) {
          this.reported.set(key, `${this.o.nadVersion()}|${reason}`);
          this.o.log.warn('hot-plug refused: nothing changed in the pod', { pod: where, element: toElement(sel), reason });
          await postPodEvent(this.o.client, pod, { reason: 'AddInterfaceRefused', type: 'Warning', host: this.o.nodeName, message }, this.o.log);
        } else {
          ok = false;
          this.retryAt.set(key, Date.now() + RETRY_MS);
          await this.report(pod, `failed ${sig}`, message, 'AddInterfaceFailed');
        }
      }
    }
    return (await this.publishStatus(pod, recorded, kept)) && ok;
  }

  /** The pod's interface names (a new element without interface takes the next free netN). */
  private async podLinks(netns: string): Promise<string[]> {
    const k = openPod(netns);
    try { return (await k.links()).map((l) => l.name); } finally { k.close(); }
  }

  /** The underlay as the agent resolved it once (the agent itself resolves it once at start). */
  private async underlay(node: Kernel): Promise<Underlay> {
    return (this.u ??= await nodeUnderlay(node, this.o.conf));
  }

  private async withNode<T>(fn: (node: Kernel) => Promise<T>): Promise<T> {
    const node = Kernel.open();
    try { return await fn(node); } finally { node.close(); }
  }

  /** ADD's validation for the pod's selections as they would be with `sel` added. */
  private async resolve(pod: HotPod, state: AttachmentState, sels: Selection[]): Promise<{ conf: PluginConf; resolved: ResolvedLegs }> {
    const conf: PluginConf = { ...this.o.conf, cniVersion: state.cniVersion as CniVersion, name: state.network };
    const asPod: PodObject = {
      metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace ?? 'default', ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
        annotations: { [NETWORKS_ANNOTATION]: JSON.stringify(sels.map(toElement)) } },
    };
    const resolved = await resolveSelections(conf, this.o.client, asPod);
    return { conf: { ...conf, networks: resolved.networks, legs: resolved.legs, ...(resolved.trunks.size ? { trunks: resolved.trunks } : {}) }, resolved };
  }

  private async attach(pod: HotPod, recorded: AttachmentState, kept: Selection[], sel: Selection): Promise<void> {
    const { conf, resolved } = await this.resolve(pod, recorded, [...kept, sel]);
    const legConf = resolved.legs[resolved.legs.length - 1];
    const env = sandboxEnv(recorded);
    await withNodeLock(conf.stateDir, async () => {
      const state = this.reread(recorded);
      const node = Kernel.open();
      const podK = openPod(state.netns);
      try {
        const u = await this.underlay(node);
        const leg = planLeg(conf, env, legConf, legMtuLimit(u));
        await attachLegSet({ node, pod: podK, conf, env, u, log: this.o.log }, state, [leg], async () => {
          await this.patchStatus(pod, (existing) => mergeStatus(existing, state.legs, this.staleMarks(existing)));
        });
        recorded.legs = state.legs;
        this.o.onLegsChanged?.();
        this.o.log.info('hot-plug: leg attached', { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, ifname: leg.ifname, network: leg.network, vni: leg.vni, mac: leg.mac, ips: leg.ips });
      } finally {
        podK.close();
        node.close();
      }
    });
  }

  private async detach(pod: HotPod, recorded: AttachmentState, ifnames: string[]): Promise<boolean> {
    const where = `${pod.metadata.namespace}/${pod.metadata.name}`;
    try {
      const gone = await withNodeLock(this.o.conf.stateDir, async () => {
        const state = this.reread(recorded);
        const node = Kernel.open();
        try {
          const out = await detachLegSet(node, state, ifnames, sandboxEnv(state), this.o.conf.stateDir, this.o.log);
          recorded.legs = state.legs;
          if (out.length) this.o.onLegsChanged?.();
          return out;
        } finally {
          node.close();
        }
      });
      for (const l of gone.filter((x) => !x.pending)) {
        this.o.log.info('hot-unplug: leg detached', { pod: where, ifname: l.ifname, network: l.network, vni: l.vni });
        await postPodEvent(this.o.client, pod, { reason: 'RemovedInterface', type: 'Normal', host: this.o.nodeName, message: `Remove ${l.ifname} from ${l.network} (podlegs)` }, this.o.log);
      }
      return true;
    } catch (e) {
      await this.report(pod, 'detach', `could not detach ${ifnames.join(', ')}: ${(e as Error).message}; the legs stay recorded and are retried`);
      return false;
    }
  }

  /** The state file again, under the node lock: a DEL may have removed it meanwhile. */
  private reread(recorded: AttachmentState): AttachmentState {
    const s = readState(this.o.conf.stateDir, recorded.containerId, recorded.ifname);
    if (!s?.complete) throw new CniError(Code.TryAgainLater, `attachment ${recorded.containerId} was deleted meanwhile`);
    return s;
  }

  /** network-status = the recorded legs (+ stale marks); patched only when it differs. */
  private async publishStatus(pod: HotPod, state: AttachmentState, kept: Selection[]): Promise<boolean> {
    const stale = await this.staleLegs(pod, state, kept);
    const existing = parseStatus(pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]);
    if (sameJson(existing, mergeStatus(existing, state.legs, stale))) return true;
    try {
      await this.patchStatus(pod, (fresh) => mergeStatus(fresh, state.legs, stale));
      return true;
    } catch (e) {
      this.o.log.warn('could not update network-status; retried on the next run', { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, error: (e as Error).message });
      return false;
    }
  }

  /**
   * network-status from the pod as the API has it now, written only if nobody wrote it meanwhile
   * (resourceVersion-guarded merge-patch; a conflict is read again and retried): another writer
   * (a trunk edit, the runtime's ADD) is never overwritten with an older list.
   */
  private async patchStatus(pod: HotPod, build: (existing: NetworkStatus[]) => NetworkStatus[]): Promise<void> {
    const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;
    for (let attempt = 1; ; attempt++) {
      const now = await this.o.client.request<HotPod>(path);
      if (now.metadata.uid !== pod.metadata.uid) throw new CniError(Code.TryAgainLater, `pod ${pod.metadata.namespace}/${pod.metadata.name} was recreated`);
      const status = build(parseStatus(now.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]));
      try {
        await this.o.client.request(path, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { resourceVersion: now.metadata.resourceVersion, annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status, null, 4) } } } });
        return;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 409) || attempt >= 5) throw e;
      }
    }
  }

  /** The stale marks a network-status list carries now (kept while a leg is attached). */
  private staleMarks(existing: NetworkStatus[]): Map<string, string> {
    return new Map(existing.filter((e) => typeof e[STALE_KEY] === 'string').map((e) => [String(e.interface), String(e[STALE_KEY])]));
  }

  /** The NAD-edit rule (nad-edits.ts) for every kept leg: ifname → why it is stale. */
  private async staleLegs(pod: HotPod, state: AttachmentState, kept: Selection[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!kept.length) return out;
    let networks: ResolvedLegs['networks'];
    let limit: MtuLimit;
    try {
      networks = (await this.resolve(pod, state, kept)).resolved.networks;
      limit = legMtuLimit(this.u ?? await this.withNode((node) => this.underlay(node)));
    } catch (e) {
      await this.report(pod, 'nads', `the NADs of the running legs cannot be read (${(e as Error).message}); running legs are left as they are`);
      return out;
    }
    for (const sel of kept) {
      const leg = state.legs.find((l) => l.ifname === sel.interface);
      const now = leg && networks.get(leg.network);
      if (!leg || !now) continue;
      const reasons = staleReasons(leg, now, sel.ips, limit);
      const topic = `stale ${leg.ifname}`;
      if (!reasons.length) { this.reported.delete(`${pod.metadata.uid}|${topic}`); continue; }
      const msg = staleMessage(leg, reasons);
      out.set(leg.ifname, msg);
      await this.report(pod, topic, msg, 'NetworkConfigStale');
    }
    return out;
  }

  /** Logs and posts a Warning once per pod and topic (again when the message changes). */
  private async report(pod: HotPod, topic: string, message: string, reason = 'AddInterfaceRefused'): Promise<void> {
    const key = `${pod.metadata.uid}|${topic}`;
    if (this.reported.get(key) === message) return;
    this.reported.set(key, message);
    this.o.log.warn(`hot-plug: ${message}`, { pod: `${pod.metadata.namespace}/${pod.metadata.name}` });
    await postPodEvent(this.o.client, pod, { reason, type: 'Warning', host: this.o.nodeName, message }, this.o.log);
  }
}
