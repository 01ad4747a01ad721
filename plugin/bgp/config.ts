// `podlegs bgp-sync --config FILE`: the `bgp` section, validated completely before the speaker
// is touched. Every problem is one BgpConfigError whose message names the field.
//
//   "bgp": { "speaker": "gobgp" | "cilium", "api": "127.0.0.1:50051", "localAsn": 65012,
//            "peerAsn": 65100, "podSelector": "app=lb", "allowedPrefixes": ["192.0.2.0/24"],
//            "deniedPrefixes": ["10.0.0.0/8"],
//            "podCidrs": [...], "serviceCidrs": [...], "nodeAddresses": [...],   (always denied; with a
//            node "kubernetes" section, missing pod/service CIDRs are derived: cluster-cidrs.ts)
//            "selectors": [ { "name": "lb", "podSelector": "app=lb", "peerAsn": 65100,
//                             "allowedPrefixes": [...] }, ... ],               (instead of the single form)
//            "source": "static" | "kubernetes", "nodeName": "...", "resyncMs": 10000,
//            "cilium": { "outputDir": "/var/lib/podlegs/cilium", "apiVersions": ["v2", "v2alpha1"],
//                        "upstreamPeers": [{ "name": "tor", "peerAddress": "192.0.2.1", "peerASN": 65000,
//                                            "peerConfig": "tor" }], "exportPodCIDR": false } }
import { parseHostPort } from '../../overlay/values';
import * as ipaddr from 'ipaddr.js';
import { checkAsn } from '../cni/bgp-conf';
import { LabelError, parseSelector, Selector } from '../cni/labels';
import { parsePrefix, Prefix, PrefixError, uniquePrefixes, within } from './prefixes';

export type SpeakerKind = 'gobgp' | 'cilium';
export type CiliumApiVersion = 'v2' | 'v2alpha1';

export interface SelectorConf { name: string; selector: Selector; peerAsn?: number; allowed: Prefix[] }
export interface BgpSyncConf {
  speaker: SpeakerKind;
  api: { host: string; port: number };
  localAsn: number;
  selectors: SelectorConf[];
  /** The effective deny list: deniedPrefixes + podCidrs + serviceCidrs + node addresses. */
  denied: Prefix[];
  /**
   * Pod and service CIDRs as configured. A missing one (allowed only when the node config has a
   * `kubernetes` section) is derived from the cluster and added with withClusterCidrs().
   */
  clusterCidrs: { pod?: Prefix[]; service?: Prefix[] };
  /** deniedPrefixes + node addresses: the part of the deny list that never comes from the cluster. */
  baseDenied: Prefix[];
  /** Where the allowed prefixes were configured ("bgp" or "bgp.selectors[i]"), per selector, for errors. */
  selectorFields: string[];
  source: 'static' | 'kubernetes';
  nodeName: string;
  resyncMs: number;
  cilium?: CiliumConf;
  gobgpBin: string;
}

/** A peer of the node that is not a pod (e.g. the top-of-rack router), carried into the rendered resources. */
export interface UpstreamPeer { name: string; peerAddress: string; peerASN: number; peerConfig?: string }
export interface CiliumConf { outputDir: string; apiVersions: CiliumApiVersion[]; upstreamPeers: UpstreamPeer[]; exportPodCIDR: boolean }

export class BgpConfigError extends Error {}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (msg: string): never => { throw new BgpConfigError(msg); };

const TOP_KEYS = ['speaker', 'api', 'localAsn', 'peerAsn', 'podSelector', 'allowedPrefixes', 'deniedPrefixes', 'selectors',
  'podCidrs', 'serviceCidrs', 'nodeAddresses', 'source', 'nodeName', 'resyncMs', 'cilium', 'gobgpBin'];
const SELECTOR_KEYS = ['name', 'podSelector', 'peerAsn', 'allowedPrefixes'];

function onlyKeys(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${where}.${k} is not a known field (known: ${allowed.join(', ')})`);
}

function asn(v: unknown, where: string): number {
  try {
    return checkAsn(v, where);
  } catch (e) {
    return fail((e as Error).message);
  }
}

function prefixList(v: unknown, where: string, opts: { required?: boolean; hostOk?: boolean } = {}): Prefix[] {
  if (v === undefined) return opts.required ? fail(`${where} is required: the prefix guard always denies it (only with a "kubernetes" section can it be derived from the cluster)`) : [];
  if (!Array.isArray(v)) return fail(`${where} must be a list of prefixes such as ["192.0.2.0/24"]`);
  if (opts.required && v.length === 0) fail(`${where} must not be empty: the prefix guard always denies it`);
  if (v.length > 1000) fail(`${where} has ${v.length} entries; at most 1000`);
  return v.map((p, i) => {
    try {
      return parsePrefix(p, `${where}[${i}]`, opts.hostOk);
    } catch (e) {
      if (e instanceof PrefixError) return fail(e.message);
      throw e;
    }
  });
}

function selectorOf(o: Obj, where: string, name: string, defaultAsn: number | undefined): SelectorConf {
  if (!/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name)) fail(`${where}.name "${name.slice(0, 40)}" must be 1-32 lower-case letters, digits or "-"`);
  let selector: Selector;
  try {
    selector = parseSelector(o.podSelector === undefined ? '' : (o.podSelector as string), `${where}.podSelector`);
  } catch (e) {
    if (e instanceof LabelError) return fail(e.message);
    throw e;
  }
  const peerAsn = o.peerAsn === undefined ? defaultAsn : asn(o.peerAsn, `${where}.peerAsn`);
  const allowed = uniquePrefixes(prefixList(o.allowedPrefixes, `${where}.allowedPrefixes`));
  return { name, selector, ...(peerAsn === undefined ? {} : { peerAsn }), allowed };
}

function apiOf(v: unknown): { host: string; port: number } {
  const s = v === undefined ? '127.0.0.1:50051' : v;
  if (typeof s !== 'string') return fail('bgp.api must be "host:port", e.g. "127.0.0.1:50051"');
  const hp = parseHostPort(s);
  if (typeof hp === 'string') return fail(`bgp.api ${hp}`);
  return hp;
}

/**
 * Parses the `bgp` section. `underlayVtep` (the node config's explicit underlay.vtep, if any) and
 * nodeAddresses are denied as /32 (/128): a pod must never announce the node's own addresses.
 * `kubernetes`: the node config has a kubernetes section, so missing pod/service CIDRs can be derived.
 */
export function parseBgpSyncConf(v: unknown, env: { nodeName?: string; underlayVtep?: string; kubernetes?: boolean } = {}): BgpSyncConf {
  if (v === undefined) fail('the config has no "bgp" section (see docs/bgp.md)');
  if (!isObj(v)) fail('bgp must be an object');
  const b = v as Obj;
  onlyKeys(b, 'bgp', TOP_KEYS);
  const speaker = b.speaker === undefined ? 'gobgp' : b.speaker;
  if (speaker !== 'gobgp' && speaker !== 'cilium') return fail(`bgp.speaker must be "gobgp" or "cilium", got ${JSON.stringify(speaker)}`);
  if (b.localAsn === undefined) fail('bgp.localAsn is required (the node speaker\'s AS number)');
  const localAsn = asn(b.localAsn, 'bgp.localAsn');
  const peerAsn = b.peerAsn === undefined ? undefined : asn(b.peerAsn, 'bgp.peerAsn');

  let selectors: SelectorConf[];
  if (b.selectors !== undefined) {
    if (b.podSelector !== undefined || b.allowedPrefixes !== undefined) fail('bgp.selectors replaces bgp.podSelector/bgp.allowedPrefixes: use one form, not both');
    if (!Array.isArray(b.selectors) || b.selectors.length === 0) fail('bgp.selectors must be a non-empty list');
    const list = b.selectors as unknown[];
    if (list.length > 64) fail(`bgp.selectors has ${list.length} entries; at most 64`);
    selectors = list.map((raw, i) => {
      const where = `bgp.selectors[${i}]`;
      if (!isObj(raw)) return fail(`${where} must be an object`);
      onlyKeys(raw, where, SELECTOR_KEYS);
      if (typeof raw.name !== 'string') return fail(`${where}.name is required (a short name used in the speaker's policy names)`);
      return selectorOf(raw, where, raw.name, peerAsn);
    });
    const names = new Set<string>();
    for (const s of selectors) {
      if (names.has(s.name)) fail(`bgp.selectors: name "${s.name}" is used twice`);
      names.add(s.name);
    }
  } else {
    selectors = [selectorOf(b, 'bgp', 'default', peerAsn)];
  }

  const nodeAddrs = prefixList(b.nodeAddresses, 'bgp.nodeAddresses', { hostOk: true })
    .map((p) => parsePrefix(p.addr.toString(), 'bgp.nodeAddresses', true));
  if (env.underlayVtep && ipaddr.isValid(env.underlayVtep)) nodeAddrs.push(parsePrefix(env.underlayVtep, 'underlay.vtep', true));
  const baseDenied = uniquePrefixes([...prefixList(b.deniedPrefixes, 'bgp.deniedPrefixes'), ...nodeAddrs]);
  // Kubernetes mode: a missing list is derived from the cluster later; an empty one is still an error.
  const cidrs = (key: 'podCidrs' | 'serviceCidrs'): Prefix[] | undefined =>
    (b[key] === undefined && env.kubernetes ? undefined : prefixList(b[key], `bgp.${key}`, { required: true }));
  const clusterCidrs = { pod: cidrs('podCidrs'), service: cidrs('serviceCidrs') };
  const selectorFields = selectors.map((_s, i) => (b.selectors ? `bgp.selectors[${i}]` : 'bgp'));

  const source = b.source === undefined ? 'static' : b.source;
  if (source !== 'static' && source !== 'kubernetes') return fail(`bgp.source must be "static" or "kubernetes", got ${JSON.stringify(source)}`);
  const nodeName = b.nodeName === undefined ? env.nodeName ?? '' : b.nodeName;
  if (typeof nodeName !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    return fail(`node name ${JSON.stringify(nodeName)} is not a valid Kubernetes node name (set bgp.nodeName or NODE_NAME)`);
  }
  const resyncMs = b.resyncMs === undefined ? 10_000 : b.resyncMs;
  if (typeof resyncMs !== 'number' || !Number.isInteger(resyncMs) || resyncMs < 100 || resyncMs > 3_600_000) fail('bgp.resyncMs must be an integer from 100 to 3600000');
  const gobgpBin = b.gobgpBin === undefined ? 'gobgp' : b.gobgpBin;
  if (typeof gobgpBin !== 'string' || gobgpBin === '' || gobgpBin.includes('\0')) fail('bgp.gobgpBin must be a program name or path');

  const conf: BgpSyncConf = {
    speaker, api: apiOf(b.api), localAsn, selectors, denied: [], clusterCidrs, baseDenied, selectorFields, source, nodeName, resyncMs: resyncMs as number, gobgpBin: gobgpBin as string,
  };
  if (b.cilium !== undefined || speaker === 'cilium') {
    if (!isObj(b.cilium)) fail('bgp.cilium must be an object with "outputDir" (where the Cilium resources are written)');
    const c = b.cilium as Obj;
    onlyKeys(c, 'bgp.cilium', ['outputDir', 'apiVersions', 'upstreamPeers', 'exportPodCIDR']);
    if (typeof c.outputDir !== 'string' || !c.outputDir.startsWith('/')) fail('bgp.cilium.outputDir must be an absolute path');
    const versions = c.apiVersions === undefined ? ['v2'] : c.apiVersions;
    if (!Array.isArray(versions) || versions.length === 0 || !versions.every((x) => x === 'v2' || x === 'v2alpha1')) {
      fail('bgp.cilium.apiVersions must be a non-empty list of "v2" (CiliumBGPClusterConfig/PeerConfig) and "v2alpha1" (CiliumBGPPeeringPolicy)');
    }
    if (c.exportPodCIDR !== undefined && typeof c.exportPodCIDR !== 'boolean') fail('bgp.cilium.exportPodCIDR must be true or false');
    const ups = c.upstreamPeers === undefined ? [] : c.upstreamPeers;
    if (!Array.isArray(ups)) fail('bgp.cilium.upstreamPeers must be a list of {"name", "peerAddress", "peerASN", "peerConfig"}');
    const upstreamPeers = (ups as unknown[]).map((raw, i): UpstreamPeer => {
      const where = `bgp.cilium.upstreamPeers[${i}]`;
      if (!isObj(raw)) return fail(`${where} must be an object`);
      onlyKeys(raw, where, ['name', 'peerAddress', 'peerASN', 'peerConfig']);
      if (typeof raw.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(raw.name) || raw.name.startsWith('pod-')) {
        return fail(`${where}.name must be a DNS label not starting with "pod-" (those are the pods' peers)`);
      }
      if (typeof raw.peerAddress !== 'string' || !ipaddr.isValid(raw.peerAddress)) return fail(`${where}.peerAddress must be an IP address`);
      if (raw.peerConfig !== undefined && (typeof raw.peerConfig !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(raw.peerConfig))) {
        return fail(`${where}.peerConfig must be the name of a CiliumBGPPeerConfig`);
      }
      return { name: raw.name, peerAddress: ipaddr.parse(raw.peerAddress).toString(), peerASN: asn(raw.peerASN, `${where}.peerASN`),
        ...(raw.peerConfig ? { peerConfig: raw.peerConfig as string } : {}) };
    });
    conf.cilium = { outputDir: c.outputDir as string, apiVersions: [...new Set(versions as CiliumApiVersion[])], upstreamPeers, exportPodCIDR: c.exportPodCIDR === true };
  }
  return withClusterCidrs(conf, {});
}

/** Still to be derived from the cluster: the lists the config left out. */
export function missingClusterCidrs(c: BgpSyncConf): { pod: boolean; service: boolean } {
  return { pod: c.clusterCidrs.pod === undefined, service: c.clusterCidrs.service === undefined };
}

/**
 * The conf with its deny list rebuilt from the configured CIDRs plus derived ones (used only for a
 * list the config left out: configured values win). Refuses an allowed prefix that lies inside a
 * denied one: it could never be accepted. `origin` names where a derived prefix came from.
 */
export function withClusterCidrs(c: BgpSyncConf, derived: { pod?: Prefix[]; service?: Prefix[] }, origin: (p: Prefix) => string | undefined = () => undefined): BgpSyncConf {
  const denied = uniquePrefixes([...(c.clusterCidrs.pod ?? derived.pod ?? []), ...(c.clusterCidrs.service ?? derived.service ?? []), ...c.baseDenied]);
  c.selectors.forEach((s, i) => {
    for (const a of s.allowed) {
      const d = denied.find((x) => within(a, x));
      const from = d && origin(d);
      if (d) fail(`${c.selectorFields[i]}.allowedPrefixes: ${a.text} lies inside the denied ${d.text}${from ? ` (${from})` : ''}; it could never be accepted`);
    }
  });
  return { ...c, denied };
}
