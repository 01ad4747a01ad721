// A trunk leg: one veth into the pod carrying 802.1Q-tagged frames. On the node, each VLAN
// is an 802.1Q sub-interface of the veth's host side, enslaved to the bridge of its
// network's segment (plbr<vni>): the same bridges, VXLAN devices, registry and flooding as
// access legs, so VLAN 10 on a trunk is one L2 segment with every access leg of its network.
// Untagged frames: the host veth itself is a port of the native network's bridge, or of no
// bridge at all. A classic BPF program on the host veth's tc ingress (trunk-filter.ts) drops
// tags that are not listed, and untagged frames when there is no native network.
import { Kernel, LinkInfo } from './kernel/kernel';
import { KernelError } from './kernel/errors';
import { Segment } from './segment';
import { probeName } from './names';
import { describeTrunkFilter, trunkFilterProgram } from './trunk-filter';

export interface TrunkVlanSpec { vid: number; hostIf: string; mtu: number; segment: Segment }
export interface TrunkSpec {
  ifname: string;      // inside the pod
  hostIf: string;      // host side of the veth
  mtu: number;
  mac?: string;
  vlans: TrunkVlanSpec[];
  native?: Segment;
}

/** Kernel features a trunk leg needs, with the names an admin looks for. */
export const TRUNK_FEATURES = {
  vlan: '802.1Q VLAN devices (CONFIG_VLAN_8021Q, module 8021q)',
  clsact: 'tc clsact qdisc (CONFIG_NET_SCH_INGRESS, module sch_ingress)',
  bpf: 'tc BPF classifier (CONFIG_NET_CLS_BPF, module cls_bpf)',
} as const;
export type TrunkFeature = keyof typeof TRUNK_FEATURES;

/** Thrown when the kernel lacks something a trunk leg needs; lists every missing feature. */
export class TrunkUnsupported extends Error {
  constructor(readonly missing: TrunkFeature[], cause?: unknown) {
    super(`this node's kernel lacks what a VLAN trunk leg needs: ${missing.map((f) => TRUNK_FEATURES[f]).join('; ')}`, { cause });
    this.name = 'TrunkUnsupported';
  }
}

const unsupported = (e: unknown): boolean => e instanceof KernelError && e.is('EOPNOTSUPP', 'ENOENT', 'EPROTONOSUPPORT');

/**
 * Checks what a trunk leg needs without leaving anything behind. `vlan` is asked without
 * creating a link (Kernel.hasLinkKind). With `tc`, a throw-away veth pair gets the clsact
 * qdisc and a BPF filter and is deleted again (used by STATUS; ADD meets tc on the real veth
 * and rolls back if it fails).
 */
export async function probeTrunkSupport(k: Kernel, opts: { tc: boolean }): Promise<void> {
  const missing: TrunkFeature[] = [];
  if (!(await k.hasLinkKind('vlan', probeName()))) missing.push('vlan');
  if (opts.tc) {
    const a = probeName();
    const veth = await k.createVeth(a, `${a}p`, k.netns ?? '/proc/thread-self/ns/net', { mtu: 1500 });
    try {
      try {
        await k.addClsact(veth.index);
        try {
          await k.addIngressBpf(veth.index, trunkFilterProgram([1], false));
        } catch (e) {
          if (!unsupported(e)) throw e;
          missing.push('bpf');
        }
      } catch (e) {
        if (!unsupported(e)) throw e;
        missing.push('clsact');
      }
    } finally {
      await k.deleteLink(veth.index);
    }
  }
  if (missing.length) throw new TrunkUnsupported(missing);
}

/** Re-labels a kernel refusal of a trunk-only operation as a missing feature. */
async function needs<T>(feature: TrunkFeature, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (unsupported(e)) throw new TrunkUnsupported([feature], e);
    throw e;
  }
}

/**
 * Builds the host side: veth (pod side already in the pod, still down), the filter, then the
 * veth up (a VLAN device needs its lower device up), one sub-interface per VLAN into its
 * segment's bridge, and last the veth into the native bridge. No frame can pass before the
 * filter is in place: the pod side stays down until the pod side is configured. Returns the host veth.
 */
export async function createTrunkLeg(node: Kernel, podNetns: string, t: TrunkSpec): Promise<LinkInfo> {
  const host = await node.createVeth(t.hostIf, t.ifname, podNetns, { mtu: t.mtu, peerMac: t.mac });
  await needs('clsact', () => node.addClsact(host.index));
  await needs('bpf', () => node.addIngressBpf(host.index, trunkFilterProgram(t.vlans.map((v) => v.vid), !!t.native)));
  await node.setLink(host.index, { up: true });
  for (const v of t.vlans) {
    const sub = await needs('vlan', () => node.createVlan(v.hostIf, host.index, v.vid, { mtu: Math.min(v.mtu, t.mtu) }));
    await node.setLink(sub.index, { master: v.segment.bridge.index, up: true });
  }
  if (t.native) await node.setLink(host.index, { master: t.native.bridge.index });
  return host;
}

/** A VLAN of a running trunk whose sub-interface moves to another segment (same VID, another network). */
export interface TrunkVlanRetarget { hostIf: string; mtu: number; segment: Segment }

export interface TrunkVlanChange {
  add: TrunkVlanSpec[];
  retarget: TrunkVlanRetarget[];
  /** Every VID the filter lets through afterwards, and whether untagged frames pass (unchanged native). */
  vids: number[];
  native: boolean;
}

/**
 * Changes the VLANs of a running trunk without a gap on the others: sub-interfaces of added
 * VLANs first, into their segments (no frame reaches them before the filter lets their VID in),
 * then retargeted ones re-enslaved, then the filter program swapped in one request. Removed
 * VLANs' sub-interfaces are the caller's to delete afterwards: by then the filter drops their
 * frames. An added sub-interface that already exists as that VLAN of this veth (an edit cut
 * short) is reused; any other device with its name is refused before anything changes.
 */
export async function changeTrunkVlans(node: Kernel, hostIf: string, c: TrunkVlanChange): Promise<void> {
  const host = await node.linkByName(hostIf);
  if (!host) throw new Error(`host side ${hostIf} of the trunk is missing`);
  const existing = new Map<string, LinkInfo>();
  for (const v of c.add) {
    const l = await node.linkByName(v.hostIf);
    if (!l) continue;
    if (l.kind !== 'vlan' || l.vlan?.id !== v.vid || l.parent !== host.index) {
      throw new Error(`${v.hostIf} exists on this node but is not VLAN ${v.vid} of ${hostIf}; remove or rename it`);
    }
    existing.set(v.hostIf, l);
  }
  for (const v of c.add) {
    const sub = existing.get(v.hostIf) ?? (await needs('vlan', () => node.createVlan(v.hostIf, host.index, v.vid, { mtu: Math.min(v.mtu, host.mtu) })));
    await node.setLink(sub.index, { master: v.segment.bridge.index, up: true });
  }
  for (const r of c.retarget) {
    const sub = await node.linkByName(r.hostIf);
    if (!sub) throw new Error(`sub-interface ${r.hostIf} of the trunk is missing`);
    await node.setLink(sub.index, { master: r.segment.bridge.index, mtu: Math.min(r.mtu, host.mtu) });
  }
  await needs('bpf', () => node.replaceIngressBpf(host.index, trunkFilterProgram(c.vids, c.native)));
}

export interface TrunkHostExpect {
  hostIf: string;
  vlans: { vid: number; hostIf: string; bridge: string }[];
  nativeBridge?: string;
}

/** What is wrong with the host side of a trunk leg, in words; [] when it is as ADD left it. */
export async function trunkHostProblems(node: Kernel, x: TrunkHostExpect, links?: LinkInfo[]): Promise<string[]> {
  const all = links ?? (await node.links());
  const byName = new Map(all.map((l) => [l.name, l]));
  const host = byName.get(x.hostIf);
  if (!host) return [`host side ${x.hostIf} of the trunk is missing`];
  const out: string[] = [];
  if (!host.up) out.push(`host side ${x.hostIf} of the trunk is down`);
  const nativeBr = x.nativeBridge ? byName.get(x.nativeBridge) : undefined;
  if (x.nativeBridge && !nativeBr) out.push(`native segment bridge ${x.nativeBridge} is missing`);
  if (x.nativeBridge && nativeBr && host.master !== nativeBr.index) out.push(`host side ${x.hostIf} is not enslaved to the native network's bridge ${x.nativeBridge}`);
  if (!x.nativeBridge && host.master) out.push(`host side ${x.hostIf} is enslaved to a bridge although the trunk has no native network`);
  for (const v of x.vlans) {
    const sub = byName.get(v.hostIf);
    const br = byName.get(v.bridge);
    if (!sub) { out.push(`VLAN ${v.vid}: sub-interface ${v.hostIf} is missing`); continue; }
    if (sub.kind !== 'vlan' || sub.vlan?.id !== v.vid || sub.parent !== host.index) out.push(`VLAN ${v.vid}: ${v.hostIf} is not VLAN ${v.vid} of ${x.hostIf}`);
    if (!br) out.push(`VLAN ${v.vid}: segment bridge ${v.bridge} is missing`);
    else if (sub.master !== br.index) out.push(`VLAN ${v.vid}: ${v.hostIf} is not enslaved to ${v.bridge}`);
    if (!sub.up) out.push(`VLAN ${v.vid}: ${v.hostIf} is down`);
  }
  const want = new Set(x.vlans.map((v) => v.vid));
  for (const l of all) {
    if (l.kind === 'vlan' && l.parent === host.index && !want.has(l.vlan?.id ?? -1)) out.push(`unexpected VLAN ${l.vlan?.id} (${l.name}) on ${x.hostIf}`);
  }
  const filters = await node.ingressBpf(host.index);
  const f = filters.length === 1 && filters[0].directAction ? describeTrunkFilter(filters[0].prog) : undefined;
  if (!f) out.push(`the VLAN filter on ${x.hostIf} (tc ingress) is missing or not podlegs'`);
  else {
    const sorted = [...want].sort((a, b) => a - b).join(',');
    if (f.vids.join(',') !== sorted) out.push(`the VLAN filter on ${x.hostIf} lets VLANs ${f.vids.join(',') || 'none'} through, expected ${sorted}`);
    if (f.native !== !!x.nativeBridge) out.push(`the VLAN filter on ${x.hostIf} ${f.native ? 'passes' : 'drops'} untagged frames, expected the opposite`);
  }
  return out;
}
