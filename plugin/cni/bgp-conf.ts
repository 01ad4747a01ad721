// The plugin entry's BGP-related fields: `bgp.localAsn` (the node speaker's ASN, published in
// `podlegs.io/bgp-peer`) and the pod's labels from the CNI `args.cni.labels` convention
// (`[{"key": "app", "value": "lb"}]`), which `podlegs bgp-sync` matches selectors against in
// static mode. Other `bgp` keys belong to `podlegs bgp-sync` (one node config file serves the
// plugin, the agent and bgp-sync); they are validated there, not here.
import { asnProblem } from '../../overlay/values';
import { CniError, Code, invalidConfig } from './errors';
import { isObj } from './validate';
import { checkLabelKey, checkLabelValue, LabelError, Labels } from './labels';

export interface PluginBgpConf { localAsn?: number }
export interface PluginBgpFields { bgp?: PluginBgpConf; labels?: Labels }

/** Keys of the bgp-sync section, tolerated (not interpreted) by the plugin. */
export const BGP_SYNC_KEYS = ['speaker', 'api', 'peerAsn', 'podSelector', 'allowedPrefixes', 'deniedPrefixes', 'selectors',
  'podCidrs', 'serviceCidrs', 'nodeAddresses', 'cilium', 'resyncMs', 'source', 'nodeName', 'routerId', 'gobgpBin'];


/** A 4-byte ASN usable by a BGP speaker: 1..4294967294 without AS_TRANS (23456). */
export function checkAsn(v: unknown, where: string): number {
  const bad = asnProblem(v);
  if (bad) throw new RangeError(`${where} ${bad}`);
  return v as number;
}

export function parsePluginBgp(bgp: unknown, args: unknown): PluginBgpFields {
  const out: PluginBgpFields = {};
  if (bgp !== undefined) {
    if (!isObj(bgp)) throw invalidConfig('bgp must be an object');
    for (const k of Object.keys(bgp)) {
      if (k !== 'localAsn' && !BGP_SYNC_KEYS.includes(k)) {
        throw new CniError(Code.UnsupportedField, `bgp.${k} is not a known field`, `known fields: localAsn, ${BGP_SYNC_KEYS.join(', ')}`);
      }
    }
    try {
      out.bgp = bgp.localAsn === undefined ? {} : { localAsn: checkAsn(bgp.localAsn, 'bgp.localAsn') };
    } catch (e) {
      throw invalidConfig((e as Error).message);
    }
  }
  const labels = isObj(args) && isObj(args.cni) ? args.cni.labels : undefined;
  if (labels !== undefined) {
    if (!Array.isArray(labels)) throw invalidConfig('args.cni.labels must be a list of {"key": ..., "value": ...}');
    const map: Labels = {};
    labels.forEach((l, i) => {
      const where = `args.cni.labels[${i}]`;
      if (!isObj(l) || typeof l.key !== 'string' || typeof l.value !== 'string') throw invalidConfig(`${where} must be {"key": string, "value": string}`);
      try {
        map[checkLabelKey(l.key, where)] = checkLabelValue(l.value, where);
      } catch (e) {
        if (e instanceof LabelError) throw invalidConfig(e.message);
        throw e;
      }
    });
    out.labels = map;
  }
  return out;
}
