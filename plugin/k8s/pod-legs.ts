// Kubernetes mode, before anything is touched: who is the pod, which networks
// does its annotation select, may it use them, and what legs does that make.
import * as fs from 'fs';
import { CniError, Code, invalidConfig } from '../cni/errors';
import { checkUniqueVnis, KubernetesConf, LegConf, NetworkConf, parseNetwork, PluginConf, checkLegIfname } from '../cni/config';
import type { Obj } from '../cni/validate';
import { CniEnv } from '../cni/env';
import { ApiError, KubeClient } from '../../overlay/kube/http';
import { parseSelections, NETWORKS_ANNOTATION, Selection } from './selection';
import { checkTrunkLegs, isTrunkEntry, parseTrunkNetwork, TrunkNetworkConf } from '../cni/trunk-config';
import { NadConfig, NadObject, podlegsNadConfig, refKey } from './nad';
import { nadCachePath, nodeAsnPath } from '../../overlay/agent/k8s/node-files';

export type { NadObject } from './nad';

export interface PodRef { namespace: string; name: string; uid?: string }
export interface PodObject { metadata: { name: string; namespace: string; uid?: string; annotations?: Record<string, string>; labels?: Record<string, string>; resourceVersion?: string }; spec?: { nodeName?: string } }

export function podRef(env: CniEnv): PodRef {
  const namespace = env.args.get('K8S_POD_NAMESPACE');
  const name = env.args.get('K8S_POD_NAME');
  if (!namespace || !name) throw new CniError(Code.InvalidEnv, 'Kubernetes mode needs K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS (set by the kubelet/runtime)');
  const uid = env.args.get('K8S_POD_UID');
  return { namespace, name, ...(uid ? { uid } : {}) };
}

/** API failures as CNI errors: unreachable or overloaded means "try again later". */
export function apiFailure(e: unknown, what: string): CniError {
  if (e instanceof ApiError) {
    if (e.status === 401 || e.status === 403) {
      return new CniError(Code.TryAgainLater, `Kubernetes API refused ${what} (${e.status} ${e.reason}): check the podlegs kubeconfig and its RBAC`, e.message);
    }
    if (e.status === 404) return new CniError(Code.TryAgainLater, `${what}: not found in the Kubernetes API`, e.message);
    return new CniError(Code.TryAgainLater, `Kubernetes API unavailable for ${what}: ${e.message}`);
  }
  return new CniError(Code.TryAgainLater, `Kubernetes API unavailable for ${what}: ${(e as Error).message}`);
}

/** The node's ASN as the agent mirrored it (overlay/agent/k8s/node-files.ts). */
export function readNodeAsn(stateDir: string): number | undefined {
  try {
    const { asn } = JSON.parse(fs.readFileSync(nodeAsnPath(stateDir), 'utf8')) as { asn?: unknown };
    return typeof asn === 'number' ? asn : undefined;
  } catch {
    return undefined;
  }
}

async function getNad(client: KubeClient, stateDir: string, ns: string, name: string): Promise<NadObject> {
  try {
    return JSON.parse(fs.readFileSync(nadCachePath(stateDir, ns, name), 'utf8')) as NadObject;
  } catch { /* not cached: ask the API */ }
  try {
    return await client.request<NadObject>(`/apis/k8s.cni.cncf.io/v1/namespaces/${ns}/network-attachment-definitions/${name}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw invalidConfig(`NetworkAttachmentDefinition ${ns}/${name} does not exist`);
    throw apiFailure(e, `NetworkAttachmentDefinition ${ns}/${name}`);
  }
}

export interface ResolvedLegs { networks: Map<string, NetworkConf>; legs: LegConf[]; trunks: Map<string, TrunkNetworkConf> }

/** The network a NAD describes, under podlegs' key; IPAM gets the name Multus would hand it. */
function nadNetwork(key: string, c: NadConfig): NetworkConf {
  return { ...parseNetwork(key, c.spec, `NetworkAttachmentDefinition ${key} config`), ipamName: c.ipamName };
}

/**
 * What Multus would put into the delegate's stdin for this selection: `runtimeConfig` for the
 * capabilities the NAD declares, `args.cni` from cni-args. Handed to the leg's IPAM plugin.
 */
function legContext(sel: Selection, c: NadConfig): Pick<LegConf, 'runtimeConfig' | 'args'> {
  const rc: Record<string, unknown> = {};
  if (c.capabilities.ips === true && sel.ips) rc.ips = sel.ips;
  if (c.capabilities.mac === true && sel.mac) rc.mac = sel.mac;
  return { ...(Object.keys(rc).length ? { runtimeConfig: rc } : {}), ...(sel.cniArgs ? { args: { cni: sel.cniArgs } } : {}) };
}

/**
 * A trunk NAD ("ns/name" = key, its spec.config) for a pod of podNs: it names other NADs (its
 * namespace unless "ns/name") for its VLANs and native network; each must be a podlegs access
 * NAD in a namespace the pod may use. Used by ADD and by the agent when the NAD changes.
 */
export async function resolveTrunkNad(key: string, spec: Obj, podNs: string, k8s: Pick<KubernetesConf, 'globalNamespaces'>,
  get: (ns: string, name: string) => Promise<NadObject> | NadObject): Promise<{ trunk: TrunkNetworkConf; networks: Map<string, NetworkConf> }> {
  const ns = key.split('/')[0];
  const t = parseTrunkNetwork(key, spec, `NetworkAttachmentDefinition ${key} config`);
  const networks = new Map<string, NetworkConf>();
  for (const ref of [...t.vlans.map((v) => v.network), ...(t.nativeNetwork ? [t.nativeNetwork] : [])]) {
    const rk = refKey(ref, ns);
    const [rns, rname] = rk.split('/');
    if (rns !== podNs && !k8s.globalNamespaces.includes(rns)) throw invalidConfig(`trunk ${key} refers to ${rk}, a namespace this pod may not use`);
    const rnad = podlegsNadConfig(await get(rns, rname), rk, false)!;
    if (isTrunkEntry(rnad.spec)) throw invalidConfig(`trunk ${key} refers to ${rk}, which is itself a trunk`);
    networks.set(rk, nadNetwork(rk, rnad));
  }
  const trunk = { ...t, vlans: t.vlans.map((v) => ({ ...v, network: refKey(v.network, ns) })), ...(t.nativeNetwork ? { nativeNetwork: refKey(t.nativeNetwork, ns) } : {}) };
  return { trunk, networks };
}

/** Selections → NADs → networks and legs (namespace isolation and VNI uniqueness enforced). */
export async function resolveSelections(conf: PluginConf, client: KubeClient, pod: PodObject): Promise<ResolvedLegs> {
  const selections: Selection[] = parseSelections(pod.metadata.annotations?.[NETWORKS_ANNOTATION]);
  const k8s = conf.kubernetes!;
  const networks = new Map<string, NetworkConf>();
  const trunks = new Map<string, TrunkNetworkConf>();
  const legs: LegConf[] = [];
  for (const [i, sel] of selections.entries()) {
    const ns = sel.namespace ?? pod.metadata.namespace;
    if (ns !== pod.metadata.namespace && !k8s.globalNamespaces.includes(ns)) {
      throw invalidConfig(`pod ${pod.metadata.namespace}/${pod.metadata.name} may not use NetworkAttachmentDefinition ${ns}/${sel.name}: only its own namespace and ${k8s.globalNamespaces.join(', ') || 'no global namespaces'} are allowed`);
    }
    const key = `${ns}/${sel.name}`;
    const nad = podlegsNadConfig(await getNad(client, conf.stateDir, ns, sel.name), key, k8s.multus);
    if (!nad) continue;
    const spec = nad.spec;
    if (networks.has(key) || trunks.has(key)) throw invalidConfig(`network ${key} is selected twice`);
    if (isTrunkEntry(spec)) {
      const r = await resolveTrunkNad(key, spec, pod.metadata.namespace, k8s, (rns, rname) => getNad(client, conf.stateDir, rns, rname));
      for (const [rk, n] of r.networks) networks.set(rk, n);
      trunks.set(key, r.trunk);
    } else {
      networks.set(key, nadNetwork(key, nad));
    }
    const leg: LegConf = {
      network: key, interface: checkLegIfname(sel.interface ?? `net${i + 1}`, `selection ${i} interface`),
      ...(trunks.has(key) ? { trunk: true } : {}), ...legContext(sel, nad),
    };
    if (sel.ips) leg.ips = sel.ips;
    if (sel.mac) leg.mac = sel.mac;
    if (sel.security) leg.security = sel.security;
    legs.push(leg);
  }
  checkUniqueVnis(networks.values());
  checkTrunkLegs(legs, trunks); // one trunk per pod, no network twice across trunk and access legs
  const seen = new Set<string>();
  for (const l of legs) {
    if (seen.has(l.interface)) throw invalidConfig(`interface ${l.interface} is requested twice`);
    seen.add(l.interface);
  }
  return { networks, legs, trunks };
}
