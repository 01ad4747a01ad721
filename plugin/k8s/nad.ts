// A podlegs NetworkAttachmentDefinition read from its spec.config alone: used by
// the plugin (a pod's selections → networks) and by the agent (which VNIs a
// network-status entry that names the NAD stands for, e.g. one Multus wrote).
import { invalidConfig } from '../cni/errors';
import { isObj, Obj } from '../cni/validate';
import { parseNetwork } from '../cni/config';
import { isTrunkEntry, parseTrunkNetwork } from '../cni/trunk-config';
import type { NadVnis } from '../../overlay/agent/k8s/network-status';

export interface NadObject { metadata: { name: string; namespace?: string }; spec?: { config?: string } }

export interface NadConfig {
  spec: Obj;            // the network: vni/mtu/ipam or trunk (envelope keys removed)
  ipamName: string;     // the name IPAM sees, as Multus hands it: the config's "name", else metadata.name
  capabilities: Obj;    // what the NAD lets the runtime pass in runtimeConfig (Multus: ips, mac)
}

/** "name" or "ns/name" of a NAD a trunk refers to; the trunk's namespace by default. */
export const refKey = (ref: string, ns: string): string => (ref.includes('/') ? ref : `${ns}/${ref}`);

/** A NAD's podlegs config, or undefined for another type (Multus attaches those). */
export function podlegsNadConfig(nad: NadObject, key: string, multus: boolean): NadConfig | undefined {
  let cfg: unknown;
  try {
    cfg = JSON.parse(nad.spec?.config ?? '');
  } catch {
    throw invalidConfig(`NetworkAttachmentDefinition ${key} has no valid JSON spec.config`);
  }
  if (!isObj(cfg)) throw invalidConfig(`NetworkAttachmentDefinition ${key} spec.config is not a JSON object`);
  if (cfg.type !== 'podlegs') {
    if (multus) return undefined;
    throw invalidConfig(`NetworkAttachmentDefinition ${key} is of type ${JSON.stringify(cfg.type)}, not podlegs; install Multus (and set kubernetes.multus) to use other types`);
  }
  const { cniVersion: _v, name, type: _t, capabilities, ...spec } = cfg;
  return {
    spec, ipamName: typeof name === 'string' && name !== '' ? name : nad.metadata.name,
    capabilities: isObj(capabilities) ? capabilities : {},
  };
}

/** "namespace/name" → VNIs, for every valid podlegs NAD (invalid ones are left out: the plugin refuses them); injected into the agent. */
export function nadVnis(nads: Iterable<NadObject>): Map<string, NadVnis> {
  const access = new Map<string, number>();
  const trunks: { key: string; ns: string; spec: Obj }[] = [];
  for (const nad of nads) {
    const ns = nad.metadata.namespace ?? 'default';
    const key = `${ns}/${nad.metadata.name}`;
    try {
      const c = podlegsNadConfig(nad, key, true);
      if (!c) continue;
      if (isTrunkEntry(c.spec)) trunks.push({ key, ns, spec: c.spec });
      else access.set(key, parseNetwork(key, c.spec, key).vni);
    } catch { /* not a usable podlegs NAD */ }
  }
  const out = new Map<string, NadVnis>([...access].map(([k, vni]) => [k, { vni }]));
  for (const { key, ns, spec } of trunks) {
    try {
      const t = parseTrunkNetwork(key, spec, key);
      const vniOf = (ref: string): number => {
        const vni = access.get(refKey(ref, ns));
        if (vni === undefined) throw new Error(`unknown ${ref}`);
        return vni;
      };
      out.set(key, { vlans: t.vlans.map((v) => ({ vid: v.vid, vni: vniOf(v.network) })), ...(t.nativeNetwork ? { vni: vniOf(t.nativeNetwork) } : {}) });
    } catch { /* a trunk with unknown references carries nothing we can follow */ }
  }
  return out;
}
