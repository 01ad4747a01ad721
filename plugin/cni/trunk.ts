// The CNI side of trunk legs: plan, preflight (names + kernel features), attach, undo, check.
// add.ts, teardown.ts, check.ts and status.ts call in here for legs whose state has `trunk`.
import { Kernel } from '../../overlay/kernel/kernel';
import { ensureSegment } from '../../overlay/segment';
import { configurePodSide } from '../../overlay/access-leg';
import { createTrunkLeg, probeTrunkSupport, TrunkUnsupported, trunkHostProblems } from '../../overlay/trunk-leg';
import { bridgeName, hostVethName, trunkVlanName, vxlanName } from '../../overlay/names';
import { MtuLimit, Underlay } from '../../overlay/underlay';
import { FileRegistry } from '../../overlay/registry/file-registry';
import type { LegConf, NetworkConf, PluginConf } from './config';
import type { CniEnv } from './env';
import { CniError, Code, invalidConfig } from './errors';
import { execIpam, ipamContext, releaseIpam } from './ipam';
import { ResultIp, ResultRoute } from './versions';
import { legMtu } from './mtu';
import { configuredGuard, guardCheck, guardOf, guardTrunkVlans } from './guard';
import type { AttachmentState, LegState } from './state';

/** Registry owner of one VLAN of a trunk leg: "<container>/<attachment>/<leg>.<vid>" (native: the leg's own). */
export const trunkMemberLeg = (legIfname: string, vid?: number): string => (vid === undefined ? legIfname : `${legIfname}.${vid}`);

/** The VNIs a leg puts this node into. */
export const legVnis = (leg: LegState): number[] =>
  leg.trunk ? [...leg.trunk.vlans.map((v) => v.vni), ...(leg.trunk.native ? [leg.trunk.native.vni] : [])] : [leg.vni];

export function planTrunkLeg(conf: PluginConf, env: CniEnv, l: LegConf, limit: MtuLimit): LegState {
  const t = conf.trunks?.get(l.network);
  if (!t) throw invalidConfig(`leg ${l.interface}: trunk network ${l.network} is not defined`);
  const mtu = legMtu(`trunk network ${t.name}`, t.mtu, limit);
  const hostIf = hostVethName(env.containerId, env.ifname, l.interface);
  const net = (name: string): NetworkConf => {
    const n = conf.networks.get(name);
    if (!n) throw invalidConfig(`trunk network ${t.name} refers to network ${name}, which is not defined`);
    legMtu(`network ${name}`, n.mtu, limit);
    return n;
  };
  const vlans = t.vlans.map((v) => {
    const n = net(v.network);
    return { vid: v.vid, network: v.network, vni: n.vni, hostIf: trunkVlanName(hostIf, v.vid), mtu: Math.min(n.mtu ?? limit.max, mtu), ...guardOf(l, n) };
  });
  const nativeNet = t.nativeNetwork ? net(t.nativeNetwork) : undefined;
  // Untagged frames pass the trunk's VLAN filter unguarded: refuse rather than attach a leg
  // whose config says "enforce" while nothing enforces it.
  if (nativeNet && guardOf(l, nativeNet).guard) {
    throw invalidConfig(`leg ${l.interface}: the native network ${t.nativeNetwork} of trunk network ${t.name} has security mode "enforce", which is not supported for a trunk's untagged frames; carry that network on a VLAN, or give this leg "security": {"mode": "off"}`);
  }
  return {
    network: t.name, vni: nativeNet?.vni ?? 0, ifname: l.interface, hostIf, mtu, ips: l.ips ?? [],
    ...(l.mac ? { mac: l.mac } : {}),
    ...(!l.ips && nativeNet?.ipam ? { ipam: nativeNet.ipam, ipamContext: ipamContext(nativeNet, l, env.args) } : {}),
    trunk: { vlans, ...(t.nativeNetwork && nativeNet ? { native: { network: t.nativeNetwork, vni: nativeNet.vni } } : {}) },
  };
}

const notAvailable = (e: TrunkUnsupported): CniError =>
  new CniError(Code.NotAvailable, e.message, 'load the missing modules (e.g. modprobe 8021q sch_ingress cls_bpf) or use a kernel built with them; access legs keep working without them');

/** Kernel features for trunk legs (STATUS probes tc too, with a throw-away veth). */
export async function requireTrunkSupport(node: Kernel, opts: { tc: boolean }): Promise<void> {
  try {
    await probeTrunkSupport(node, opts);
  } catch (e) {
    if (e instanceof TrunkUnsupported) throw notAvailable(e);
    throw e;
  }
}

/** Before ADD changes anything: trunk host names free, and the kernel can make VLAN devices. */
export async function preflightTrunks(node: Kernel, legs: LegState[]): Promise<void> {
  const trunks = legs.filter((l) => l.trunk);
  if (trunks.length === 0) return;
  for (const leg of trunks) {
    for (const v of leg.trunk!.vlans) {
      if (await node.linkByName(v.hostIf)) {
        throw new CniError(Code.InterfaceExists, `host interface ${v.hostIf} for VLAN ${v.vid} of trunk ${leg.ifname} already exists; a previous attachment was not deleted`);
      }
    }
  }
  await requireTrunkSupport(node, { tc: false });
}

export interface AttachContext {
  node: Kernel;
  pod: Kernel;
  env: CniEnv;
  conf: PluginConf;
  u: Underlay;
  registry?: FileRegistry;
  leg: LegState;
  save: () => void;
}

/** Attaches one trunk leg (segments, veth, filter, VLAN sub-interfaces, IPs, members). */
export async function attachTrunkLeg(c: AttachContext): Promise<{ ips: ResultIp[]; routes: ResultRoute[] }> {
  const { node, pod, env, conf, u, leg } = c;
  const t = leg.trunk!;
  const vlans = [];
  for (const v of t.vlans) vlans.push({ vid: v.vid, hostIf: v.hostIf, mtu: v.mtu, segment: (await ensureSegment(node, v.vni, u, conf.underlay.port)).segment });
  const native = t.native ? (await ensureSegment(node, t.native.vni, u, conf.underlay.port)).segment : undefined;
  try {
    await createTrunkLeg(node, env.netns, { ifname: leg.ifname, hostIf: leg.hostIf, mtu: leg.mtu, mac: leg.mac, vlans, native });
  } catch (e) {
    if (e instanceof TrunkUnsupported) throw notAvailable(e);
    throw e;
  }
  await guardTrunkVlans(node, pod, leg); // the pod side is still down
  const alloc = leg.ipam && leg.ipamContext && t.native ? await execIpam('ADD', leg.ipam, leg.ipamContext, {
    cniVersion: conf.cniVersion, containerId: env.containerId, netns: env.netns, ifname: leg.ifname, cniPath: env.path, environ: env.environ,
  }) : undefined;
  if (alloc) leg.ips = (alloc.ips ?? []).map((ip) => ip.address);
  const routes = alloc?.routes ?? [];
  if (routes.some((r) => /^(0\.0\.0\.0|::)\/0$/.test(r.dst))) {
    throw invalidConfig(`IPAM of network ${t.native!.network} returned a default route; eth0 keeps the default route, remove it from the ipam "routes"`);
  }
  const link = await configurePodSide(pod, leg.ifname, leg.ips, routes);
  leg.mac = link.mac;
  c.save();
  const owner = (vid?: number): string => `${env.containerId}/${env.ifname}/${trunkMemberLeg(leg.ifname, vid)}`;
  for (const v of t.vlans) c.registry?.register({ vni: v.vni, vtep: u.vtep, mac: link.mac, owner: owner(v.vid), network: v.network });
  if (t.native) c.registry?.register({ vni: t.native.vni, vtep: u.vtep, mac: link.mac, owner: owner(), network: t.native.network });
  const ips = (alloc?.ips ?? leg.ips.map((address): ResultIp => ({ address }))).map(({ interface: _i, ...ip }) => ip);
  return { ips, routes };
}

/** Undoes a trunk leg's registrations and addresses from its state (its links: trunkHostLinks); every step runs and reports. */
export async function teardownTrunkLeg(s: AttachmentState, leg: LegState, registry: FileRegistry | undefined, caller: Pick<CniEnv, 'path' | 'environ'>,
  step: (what: string, fn: () => unknown) => Promise<void>): Promise<void> {
  const t = leg.trunk!;
  const owner = (vid?: number): string => `${s.containerId}/${s.ifname}/${trunkMemberLeg(leg.ifname, vid)}`;
  for (const v of t.vlans) await step(`unregister VLAN ${v.vid}`, () => registry?.unregister({ vni: v.vni, vtep: s.vtep, owner: owner(v.vid) }));
  if (t.native) await step('unregister native', () => registry?.unregister({ vni: t.native!.vni, vtep: s.vtep, owner: owner() }));
  if (leg.ipam && t.native) {
    const ipam = leg.ipam;
    await step('release addresses', () => releaseIpam(ipam, leg.ipamContext, t.native!.network, s, leg.ifname, caller));
  }
}

/** The host links of a trunk leg: its veth and its VLAN devices (teardown removes them with the access legs' veths). */
export const trunkHostLinks = (leg: LegState): string[] => [leg.hostIf, ...(leg.trunk?.vlans.map((v) => v.hostIf) ?? [])];

/** CHECK of the node side of a trunk leg: segments, sub-interfaces, native port, VLAN filter. */
export async function trunkLegProblems(node: Kernel, leg: LegState, conf?: PluginConf): Promise<string[]> {
  const t = leg.trunk!;
  const links = await node.links();
  const byName = new Map(links.map((l) => [l.name, l]));
  const out: string[] = [];
  // The configuration CHECK is called with must still describe what ADD attached.
  const want = conf?.trunks?.get(leg.network);
  if (conf && !want) out.push(`the configuration no longer defines trunk network ${leg.network}`);
  if (want) {
    const fmt = (vs: { vid: number; network: string }[]): string => [...vs].sort((a, b) => a.vid - b.vid).map((v) => `${v.vid}:${v.network}`).join(',');
    if (fmt(want.vlans) !== fmt(t.vlans)) out.push(`VLANs ${fmt(t.vlans)} are attached, the configuration says ${fmt(want.vlans)}`);
    if ((want.nativeNetwork ?? '') !== (t.native?.network ?? '')) out.push(`native network is ${t.native?.network ?? 'none'}, the configuration says ${want.nativeNetwork ?? 'none'}`);
  }
  for (const { vni, network } of [...t.vlans, ...(t.native ? [t.native] : [])]) {
    const br = byName.get(bridgeName(vni));
    const vx = byName.get(vxlanName(vni));
    if (!br || !vx) out.push(`segment of VNI ${vni} (network ${network}) is missing on this node`);
    else if (vx.vxlan?.vni !== vni || vx.master !== br.index) out.push(`VXLAN device ${vx.name} is not VNI ${vni} on bridge ${br.name}`);
  }
  out.push(...await trunkHostProblems(node, {
    hostIf: leg.hostIf,
    vlans: t.vlans.map((v) => ({ vid: v.vid, hostIf: v.hostIf, bridge: bridgeName(v.vni) })),
    ...(t.native ? { nativeBridge: bridgeName(t.native.vni) } : {}),
  }, links));
  for (const v of t.vlans) {
    const sub = links.find((l) => l.name === v.hostIf);
    if (sub) out.push(...(await guardCheck(node, sub, { mac: leg.mac ?? '', ips: [] }, v.guard, configuredGuard(conf, leg.ifname, v.network))).map((p) => `VLAN ${v.vid}: ${p}`));
  }
  return out;
}
