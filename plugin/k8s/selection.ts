// The NPWG (v1.3) network selection annotation `k8s.v1.cni.cncf.io/networks`:
// either a comma list of `[namespace/]name[@interface]` or a JSON list of
// selection elements. Pure: validated here, resolved elsewhere.
import { macProblem } from '../../overlay/values';
import * as ipaddr from 'ipaddr.js';
import { CniError, Code } from '../cni/errors';
import { parseSecurity, SecurityConf } from '../cni/security-config';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';

export interface Selection {
  name: string;
  namespace?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  cniArgs?: Record<string, unknown>;
  security?: SecurityConf;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Keys of the NPWG selection element podlegs cannot honour: refusing beats ignoring.
const UNSUPPORTED: Record<string, string> = {
  'default-route': 'podlegs never takes the default route from eth0 (Cilium keeps it)',
  'infiniband-guid': 'podlegs legs are veth, not InfiniBand',
  'portMappings': 'port mappings belong to the primary network',
  'bandwidth': 'bandwidth limits are not implemented by podlegs',
  'ipam-claim-reference': 'IPAM claims are not supported',
};
const KNOWN = ['name', 'namespace', 'interface', 'ips', 'mac', 'cni-args', 'security'];

const bad = (msg: string): CniError => new CniError(Code.InvalidConfig, `pod annotation ${NETWORKS_ANNOTATION}: ${msg}`);

function checkNames(s: Selection, where: string): Selection {
  if (!DNS1123_SUBDOMAIN.test(s.name)) throw bad(`${where}: network name "${s.name.slice(0, 60)}" is not a valid object name`);
  if (s.namespace !== undefined && !DNS1123_LABEL.test(s.namespace)) throw bad(`${where}: namespace "${s.namespace.slice(0, 60)}" is not a valid namespace name`);
  if (s.interface !== undefined) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/.test(s.interface)) throw bad(`${where}: interface "${s.interface.slice(0, 30)}" is not a valid interface name`);
    if (s.interface.startsWith('eth')) throw bad(`${where}: interface "${s.interface}" starts with "eth", which belongs to the primary CNI; use net1, net2, ...`);
  }
  return s;
}

function fromText(text: string): Selection[] {
  return text.split(',').map((raw, i) => {
    const item = raw.trim();
    const m = /^(?:([^/@]+)\/)?([^/@]+)(?:@([^/@]+))?$/.exec(item);
    if (!m) throw bad(`entry ${i + 1} "${item.slice(0, 60)}" is not [namespace/]name[@interface]`);
    return checkNames({ name: m[2], ...(m[1] ? { namespace: m[1] } : {}), ...(m[3] ? { interface: m[3] } : {}) }, `entry ${i + 1}`);
  });
}

function fromJson(list: unknown): Selection[] {
  if (!Array.isArray(list)) throw bad('JSON form must be a list of selection elements');
  return list.map((raw, i) => {
    const where = `element ${i}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`${where} is not an object`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (UNSUPPORTED[k]) throw new CniError(Code.UnsupportedField, `pod annotation ${NETWORKS_ANNOTATION}: ${where}: "${k}" is not supported: ${UNSUPPORTED[k]}`);
      if (!KNOWN.includes(k)) throw new CniError(Code.UnsupportedField, `pod annotation ${NETWORKS_ANNOTATION}: ${where}: unknown key "${k.slice(0, 40)}"`);
    }
    if (typeof e.name !== 'string') throw bad(`${where}: "name" must be a string`);
    const s: Selection = { name: e.name };
    for (const k of ['namespace', 'interface', 'mac'] as const) {
      if (e[k] === undefined) continue;
      if (typeof e[k] !== 'string') throw bad(`${where}: "${k}" must be a string`);
      s[k] = e[k] as string;
    }
    if (s.mac !== undefined) {
      s.mac = s.mac.toLowerCase();
      const why = macProblem(s.mac);
      if (why) throw bad(`${where}: mac ${why}`);
    }
    if (e.ips !== undefined) {
      if (!Array.isArray(e.ips) || e.ips.length === 0 || !e.ips.every((x) => typeof x === 'string')) throw bad(`${where}: "ips" must be a non-empty list of strings`);
      s.ips = (e.ips as string[]).map((ip) => {
        try {
          ipaddr.parseCIDR(ip);
          return ip;
        } catch {
          throw bad(`${where}: ip "${ip.slice(0, 50)}" needs a prefix length, e.g. 192.0.2.10/24`);
        }
      });
    }
    if (e['cni-args'] !== undefined) {
      if (typeof e['cni-args'] !== 'object' || e['cni-args'] === null || Array.isArray(e['cni-args'])) throw bad(`${where}: "cni-args" must be an object`);
      s.cniArgs = e['cni-args'] as Record<string, unknown>;
    }
    if (e.security !== undefined) s.security = parseSecurity(e.security, `pod annotation ${NETWORKS_ANNOTATION}: ${where}: security`);
    return checkNames(s, where);
  });
}

/** Parses the annotation; undefined or blank means "no extra networks". */
export function parseSelections(annotation: string | undefined): Selection[] {
  const text = (annotation ?? '').trim();
  if (text === '') return [];
  if (text.length > 65536) throw bad('annotation is longer than 64 KiB');
  let out: Selection[];
  if (text.startsWith('[') || text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw bad(`not valid JSON: ${(e as Error).message}`);
    }
    out = fromJson(parsed);
  } else {
    out = fromText(text);
  }
  const names = new Set<string>();
  for (const s of out) {
    if (s.interface && names.has(s.interface)) throw bad(`interface ${s.interface} is requested twice`);
    if (s.interface) names.add(s.interface);
  }
  return out;
}
