// loadConf: parse and validate the plugin's stdin completely before anything
// on the node is touched. Every problem becomes one CNI error naming the field.
import * as ipaddr from 'ipaddr.js';
import { CniError, Code, invalidConfig } from './errors';
import { absPath, checkUnicast, cidr, int, isObj, networkName, obj, Obj, onlyKeys, parseMac, str } from './validate';
import { parseSecurity, SecurityConf } from './security-config';
import { checkVersion, CniVersion, parsePrevResult, Result } from './versions';
import { checkTrunkLegs, parseTrunks, TrunkNetworkConf } from './trunk-config';
import { parsePluginBgp, PluginBgpConf } from './bgp-conf';
import { asnProblem } from '../../overlay/values';
import { parseCidr } from '../../overlay/ip/cidr';
import { isDelegateConf, MAX_STDIN, nodeConfigFile } from '../cni-client/protocol';
import { mtuLimit, vtepFamily } from '../../overlay/underlay';
import { legMtu } from './mtu';
import type { LogConf } from '../log';

export const MAX_INPUT_BYTES = MAX_STDIN;
export const MAX_VNI = 16777215;
export const CILIUM_VXLAN_PORT = 8472;

export interface IpamConf { type: string; [k: string]: unknown }
export interface UnderlayConf { interface: string; vtep: string; port: number; mtu: number | 'auto' }
export interface NetworkConf {
  name: string;        // podlegs' key: a `networks` entry, or "namespace/name" of a NAD
  vni: number;
  mtu?: number;
  ipam?: IpamConf;
  /** The network name IPAM sees when it differs from `name` (a NAD: its config's name, else metadata.name). */
  ipamName?: string;
  /** The leg guard for legs on this network (a leg or selection element may replace it). */
  security?: SecurityConf;
}
export interface LegConf {
  network: string;
  interface: string;
  ips?: string[];
  mac?: string;
  trunk?: boolean;     // network is a trunk network
  /** Handed to the leg's IPAM plugin in its stdin, as the reference plugins pass theirs on. */
  runtimeConfig?: Obj;
  args?: Obj;
  /** Replaces the network's `security` for this leg (static legs, selection elements). */
  security?: SecurityConf;
}
/** Where membership is published: a shared directory, or (Kubernetes) the pods' network-status, with no file at all. */
export type RegistryConf = { type: 'file'; path: string } | { type: 'kubernetes' };
export type { LogConf };
export interface Attachment { containerID: string; ifname: string }
export interface KubernetesConf { kubeconfig: string; globalNamespaces: string[]; multus: boolean; nodeAsn?: number }
export type Mode = 'static' | 'kubernetes' | 'delegate';

export interface PluginConf {
  cniVersion: CniVersion;
  name: string;
  /** static: legs in the config; kubernetes: legs from the pod annotation; delegate: Multus hands us one NAD. */
  mode: Mode;
  kubernetes?: KubernetesConf;
  underlay: UnderlayConf;
  registry: RegistryConf;
  stateDir: string;
  log: LogConf;
  networks: Map<string, NetworkConf>;
  legs: LegConf[];
  /** Trunk networks (entries of `networks` with a "trunk" field); `networks` holds the VNI ones. */
  trunks?: Map<string, TrunkNetworkConf>;
  prevResult?: Result;
  validAttachments?: Attachment[];
  bgp?: PluginBgpConf;                 // node speaker's ASN for podlegs.io/bgp-peer (plugin/bgp)
  labels?: Record<string, string>;     // args.cni.labels, matched by bgp-sync selectors in static mode
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** A leg's interface name inside the pod: a valid Linux name, never eth*. */
export function checkLegIfname(v: unknown, where: string): string {
  const s = str(v, where);
  if (!IFNAME_RE.test(s) || s === '.' || s === '..') {
    throw invalidConfig(`${where} "${s.slice(0, 40)}" is not a valid interface name (1-15 characters: letters, digits, "_", "-", ".")`);
  }
  if (s.startsWith('eth')) throw invalidConfig(`${where} "${s}": names starting with "eth" belong to the primary CNI (Cilium); use net1, net2, ...`);
  return s;
}

function parseUnderlay(v: unknown): UnderlayConf {
  const u = v === undefined ? {} : obj(v, 'underlay');
  onlyKeys(u, 'underlay', ['interface', 'vtep', 'port', 'mtu']);
  const iface = u.interface === undefined ? 'auto' : str(u.interface, 'underlay.interface');
  if (iface !== 'auto' && !IFNAME_RE.test(iface)) throw invalidConfig(`underlay.interface "${iface}" is not a valid interface name`);
  const raw = u.vtep === undefined ? 'auto' : str(u.vtep, 'underlay.vtep');
  // Canonical form (2001:DB8:0::11 → 2001:db8::11): the kernel reports addresses and FDB entries that way.
  const vtep = raw === 'auto' ? raw : ipaddr.parse(checkUnicast(raw, 'underlay.vtep')).toString();
  const port = u.port === undefined ? 4789 : int(u.port, 'underlay.port', 1, 65535);
  if (port === CILIUM_VXLAN_PORT) {
    throw invalidConfig(`underlay.port ${port} is Cilium's VXLAN port; podlegs needs its own (default 4789)`);
  }
  const mtu = u.mtu === undefined || u.mtu === 'auto' ? 'auto' : int(u.mtu, 'underlay.mtu', 1280, 65535);
  return { interface: iface, vtep, port, mtu };
}


function parseIpam(v: unknown, where: string): IpamConf {
  const o = obj(v, where);
  const type = str(o.type, `${where}.type`);
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw invalidConfig(`${where}.type "${type}" is not a plugin name`);
  return { ...o, type };
}

/** One network: an entry of `networks`, or the config of a NetworkAttachmentDefinition. */
export function parseNetwork(name: string, raw: unknown, where: string, extraKeys: string[] = []): NetworkConf {
  const n = obj(raw, where);
  onlyKeys(n, where, ['vni', 'mtu', 'ipam', 'security', ...extraKeys]);
  const net: NetworkConf = { name, vni: int(n.vni, `${where}.vni`, 1, MAX_VNI) };
  if (n.security !== undefined) net.security = parseSecurity(n.security, `${where}.security`);
  if (n.mtu !== undefined) net.mtu = int(n.mtu, `${where}.mtu`, 576, 65535);
  if (n.ipam !== undefined) net.ipam = parseIpam(n.ipam, `${where}.ipam`);
  return net;
}

/** Two networks with one VNI would silently merge two L2 segments: refuse. */
export function checkUniqueVnis(nets: Iterable<NetworkConf>): void {
  const byVni = new Map<number, string>();
  for (const net of nets) {
    const other = byVni.get(net.vni);
    if (other !== undefined && other !== net.name) throw invalidConfig(`networks ${other} and ${net.name} both use VNI ${net.vni}; a VNI identifies one network`);
    byVni.set(net.vni, net.name);
  }
}

function parseNetworks(v: unknown): Map<string, NetworkConf> {
  const out = new Map<string, NetworkConf>();
  if (v === undefined) return out;
  const nets = obj(v, 'networks');
  for (const [name, raw] of Object.entries(nets)) {
    networkName(name, 'network name');
    if (isObj(raw) && raw.trunk !== undefined) continue; // a trunk network: parseTrunks
    out.set(name, parseNetwork(name, raw, `networks.${name}`));
  }
  checkUniqueVnis(out.values());
  return out;
}

/** An AS number field of the plugin config. */
function checkedAsn(v: unknown, where: string): number {
  const bad = asnProblem(v);
  if (bad) throw invalidConfig(`${where} ${bad}`);
  return v as number;
}


function parseLegs(v: unknown, networks: Map<string, NetworkConf>, trunks: Map<string, TrunkNetworkConf> = new Map()): LegConf[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidConfig('legs must be a list');
  if (v.length > 32) throw invalidConfig(`legs has ${v.length} entries; at most 32 legs per pod`);
  const seenIf = new Set<string>();
  const seenNet = new Set<string>();
  return v.map((raw, i) => {
    const where = `legs[${i}]`;
    const l = obj(raw, where);
    onlyKeys(l, where, ['network', 'interface', 'ips', 'mac', 'security']);
    const network = str(l.network, `${where}.network`);
    if (!networks.has(network) && !trunks.has(network)) {
      throw invalidConfig(`${where}.network "${network.slice(0, 70)}" is not defined in networks (known: ${[...networks.keys()].join(', ') || 'none'})`);
    }
    const iface = checkLegIfname(l.interface, `${where}.interface`);
    if (seenIf.has(iface)) throw invalidConfig(`${where}.interface "${iface}" is used by two legs`);
    if (seenNet.has(network)) throw invalidConfig(`${where}: network "${network}" is attached twice; one leg per network`);
    seenIf.add(iface);
    seenNet.add(network);
    const leg: LegConf = { network, interface: iface, ...(trunks.has(network) ? { trunk: true } : {}) };
    if (l.ips !== undefined) leg.ips = parseIps(l.ips, `${where}.ips`);
    if (l.mac !== undefined) leg.mac = parseMac(l.mac, `${where}.mac`);
    if (l.security !== undefined) leg.security = parseSecurity(l.security, `${where}.security`);
    return leg;
  });
}

/** A leg's addresses: a non-empty list of CIDRs, no address twice. */
export function parseIps(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw invalidConfig(`${where} must be a non-empty list of addresses with prefix length`);
  const ips = v.map((ip, j) => cidr(ip, `${where}[${j}]`));
  if (new Set(ips.map((c) => parseCidr(c)[0].toString())).size < ips.length) throw invalidConfig(`${where} lists the same address twice`);
  return ips;
}

/**
 * Delegate mode: the attachment IS the leg, so the runtime's `runtimeConfig` (Multus puts the
 * selection element's `ips`/`mac` there for a NAD declaring those capabilities) describes it.
 * Its ips replace IPAM, as the selection's do in Kubernetes mode. Both objects also go to IPAM.
 */
function applyRuntimeConfig(leg: LegConf, rc: unknown, args: unknown): void {
  if (args !== undefined) leg.args = obj(args, 'args');
  if (rc === undefined) return;
  const r = obj(rc, 'runtimeConfig');
  leg.runtimeConfig = r;
  if (r.ips !== undefined) leg.ips = parseIps(r.ips, 'runtimeConfig.ips');
  if (r.mac !== undefined) leg.mac = parseMac(r.mac, 'runtimeConfig.mac');
}

function parseRegistry(v: unknown, stateDir: string, k8s: boolean): RegistryConf {
  if (v === undefined) return k8s ? { type: 'kubernetes' } : { type: 'file', path: `${stateDir}/registry` };
  const r = obj(v, 'registry');
  onlyKeys(r, 'registry', ['type', 'path']);
  const type = str(r.type, 'registry.type');
  if (type === 'kubernetes') {
    if (!k8s) throw invalidConfig('registry.type "kubernetes" needs a "kubernetes" section (kubeconfig)');
    return { type };
  }
  if (type !== 'file') throw invalidConfig(`registry.type must be "file" or "kubernetes", got "${type.slice(0, 40)}"`);
  return { type, path: r.path === undefined ? `${stateDir}/registry` : absPath(r.path, 'registry.path') };
}

function parseLog(v: unknown): LogConf {
  if (v === undefined) return { file: '/var/log/podlegs/podlegs.log', level: 'info' };
  const l = obj(v, 'log');
  onlyKeys(l, 'log', ['file', 'level']);
  const level = l.level === undefined ? 'info' : str(l.level, 'log.level');
  if (!LOG_LEVELS.includes(level)) throw invalidConfig(`log.level must be one of ${LOG_LEVELS.join(', ')}`);
  return { ...(l.file === undefined ? {} : { file: absPath(l.file, 'log.file') }), level };
}

function parseKubernetes(v: unknown): KubernetesConf {
  const k = obj(v, 'kubernetes');
  onlyKeys(k, 'kubernetes', ['kubeconfig', 'globalNamespaces', 'multus', 'nodeAsn']);
  const globals = k.globalNamespaces === undefined ? [] : k.globalNamespaces;
  if (!Array.isArray(globals) || !globals.every((n) => typeof n === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))) {
    throw invalidConfig('kubernetes.globalNamespaces must be a list of namespace names');
  }
  if (k.multus !== undefined && typeof k.multus !== 'boolean') throw invalidConfig('kubernetes.multus must be true or false');
  return {
    kubeconfig: k.kubeconfig === undefined ? '/etc/cni/net.d/podlegs.d/podlegs.kubeconfig' : absPath(k.kubeconfig, 'kubernetes.kubeconfig'),
    globalNamespaces: globals as string[],
    multus: k.multus === true,
    ...(k.nodeAsn === undefined ? {} : { nodeAsn: checkedAsn(k.nodeAsn, 'kubernetes.nodeAsn') }),
  };
}

/** Node-level defaults for a Multus delegate call (from the caller's env), whose stdin is only a NAD's config. */
function nodeDefaults(env: NodeJS.ProcessEnv): Obj {
  const file = nodeConfigFile(env);
  let text: string;
  try {
    text = require('fs').readFileSync(file, 'utf8') as string; // eslint-disable-line @typescript-eslint/no-require-imports
  } catch {
    return {};
  }
  try {
    return obj(JSON.parse(text), `node config ${file}`);
  } catch (e) {
    throw invalidConfig(`node config ${file} is not a JSON object: ${(e as Error).message}`);
  }
}

const NODE_KEYS = ['underlay', 'registry', 'stateDir', 'log', 'kubernetes'];
const ENVELOPE_KEYS = ['cniVersion', 'name', 'type', 'prevResult', 'runtimeConfig', 'args', 'capabilities', 'cni.dev/valid-attachments'];

/** A NAD config handed over by Multus: one network, one leg named CNI_IFNAME. */
function delegateToStatic(c: Obj, ifname: string, env: NodeJS.ProcessEnv): Obj {
  const defaults = nodeDefaults(env);
  const network: Obj = {};
  const rest: Obj = {};
  for (const [k, v] of Object.entries(c)) {
    if (NODE_KEYS.includes(k) || ENVELOPE_KEYS.includes(k)) rest[k] = v;
    else network[k] = v;
  }
  for (const k of NODE_KEYS) if (rest[k] === undefined && defaults[k] !== undefined) rest[k] = defaults[k];
  const name = typeof c.name === 'string' ? c.name : '';
  return { ...rest, networks: { [name]: network }, legs: [{ network: name, interface: ifname }] };
}

function parseAttachments(v: unknown): Attachment[] {
  if (!Array.isArray(v)) throw invalidConfig('cni.dev/valid-attachments must be a list');
  return v.map((a, i) => {
    const o = obj(a, `cni.dev/valid-attachments[${i}]`);
    return { containerID: str(o.containerID, `cni.dev/valid-attachments[${i}].containerID`), ifname: str(o.ifname, `cni.dev/valid-attachments[${i}].ifname`) };
  });
}

/** The raw stdin bytes of a CNI call as one JSON object. */
function decode(stdin: Buffer | string): Obj {
  if (Buffer.byteLength(stdin) > MAX_INPUT_BYTES) throw new CniError(Code.DecodeFailure, `network configuration on stdin is larger than ${MAX_INPUT_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(stdin.toString());
  } catch (e) {
    throw new CniError(Code.DecodeFailure, `network configuration on stdin is not valid JSON: ${(e as Error).message}`);
  }
  return obj(raw, 'network configuration');
}

const parseStateDir = (v: unknown): string => (v === undefined ? '/var/lib/podlegs' : absPath(v, 'stateDir'));

/** What DEL reads from its configuration. */
export type TeardownConf = Pick<PluginConf, 'cniVersion' | 'stateDir' | 'log'>;

/**
 * DEL undoes what the attachment's state file records (legs, VNIs, IPAM, registry), never
 * what the configuration says now: only the fields that find that file and the log are
 * validated, so a config that became invalid elsewhere (or a runtime's stale copy) still DELs.
 */
export function loadTeardownConf(stdin: Buffer | string, env: NodeJS.ProcessEnv = process.env): TeardownConf {
  const c = decode(stdin);
  const cniVersion = checkVersion(c.cniVersion);
  const node = isDelegateConf(c) ? nodeDefaults(env) : {}; // a NAD config has no node settings of its own
  return { cniVersion, stateDir: parseStateDir(c.stateDir ?? node.stateDir), log: parseLog(c.log ?? node.log) };
}

/**
 * Parses the raw stdin bytes of a CNI call into a validated configuration. env: the caller's
 * environment (a delegate call reads PODLEGS_NODE_CONFIG from it); the CLI's own by default.
 */
export function loadConf(stdin: Buffer | string, ifname = '', env: NodeJS.ProcessEnv = process.env): PluginConf {
  let c = decode(stdin);
  const cniVersion = checkVersion(c.cniVersion);
  const delegate = isDelegateConf(c);
  if (delegate) {
    if (c.networks !== undefined || c.legs !== undefined) throw invalidConfig('a network config (with "vni") cannot also carry "networks" or "legs"');
    if (!ifname) throw invalidConfig('a network config (with "vni") needs CNI_IFNAME for its leg');
    c = delegateToStatic(c, ifname, env);
  }
  const name = networkName(c.name, 'name');
  if (c.type !== 'podlegs') throw invalidConfig(`type must be "podlegs", got ${JSON.stringify(c.type)}`);
  const stateDir = parseStateDir(c.stateDir);
  const networks = parseNetworks(c.networks);
  const trunks = parseTrunks(c.networks, networks);
  const kubernetes = c.kubernetes === undefined ? undefined : parseKubernetes(c.kubernetes);
  const mode: Mode = delegate ? 'delegate' : kubernetes && c.legs === undefined ? 'kubernetes' : 'static';
  const conf: PluginConf = {
    cniVersion,
    name,
    mode,
    ...(kubernetes ? { kubernetes } : {}),
    underlay: parseUnderlay(c.underlay),
    registry: parseRegistry(c.registry, stateDir, !!kubernetes),
    stateDir,
    log: parseLog(c.log),
    networks,
    legs: parseLegs(c.legs, networks, trunks),
    ...(trunks.size ? { trunks } : {}),
  };
  checkTrunkLegs(conf.legs, trunks);
  // agent.socket tells the thin client (plugin/cni-client) where the agent listens; the rest of
  // "agent" is the agent's own (overlay/agent/config.ts).
  if (c.agent !== undefined) {
    const a = obj(c.agent, 'agent');
    if (a.socket !== undefined) absPath(a.socket, 'agent.socket');
  }
  if (delegate && conf.legs.length === 1) applyRuntimeConfig(conf.legs[0], c.runtimeConfig, c.args);
  const prevResult = parsePrevResult(c.prevResult);
  if (prevResult) conf.prevResult = prevResult;
  if (c['cni.dev/valid-attachments'] !== undefined) conf.validAttachments = parseAttachments(c['cni.dev/valid-attachments']);
  Object.assign(conf, parsePluginBgp(c.bgp, c.args));
  if (conf.underlay.mtu !== 'auto') {
    // With vtep "auto" the family is known only at ADD (which checks again): refuse here what even IPv4 cannot carry.
    const limit = mtuLimit(conf.underlay.mtu, conf.underlay.vtep === 'auto' ? 4 : vtepFamily(conf.underlay.vtep));
    for (const n of [...networks.values(), ...trunks.values()]) legMtu(`network ${n.name}`, n.mtu, limit);
  }
  return conf;
}
