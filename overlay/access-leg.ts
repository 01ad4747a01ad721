// An access leg: a veth whose pod side is the NF's interface and whose host
// side is a port of the segment's bridge.
import { Kernel, LinkInfo } from './kernel/kernel';
import { Segment } from './segment';

export interface LegSpec { ifname: string; hostIf: string; mtu: number; mac?: string }

/** Creates the pair with the pod side already in the pod's netns, and plugs the host side in. */
export async function createAccessLeg(node: Kernel, podNetns: string, seg: Segment, leg: LegSpec): Promise<LinkInfo> {
  return node.createVeth(leg.hostIf, leg.ifname, podNetns, { mtu: leg.mtu, peerMac: leg.mac, master: seg.bridge.index, up: true });
}

/** Addresses and routes inside the pod, then the link goes up; returns the pod-side link. */
export async function configurePodSide(pod: Kernel, ifname: string, ips: string[], routes: { dst: string; gw?: string }[]): Promise<LinkInfo> {
  const link = await pod.linkByName(ifname);
  if (!link) throw new Error(`leg ${ifname} did not appear in the pod`);
  for (const ip of ips) await pod.addAddress(link.index, ip);
  await pod.setLink(link.index, { up: true });
  for (const r of routes) await pod.addRoute(r.dst, { gateway: r.gw, oif: link.index });
  return { ...link, up: true };
}
