// Pod side of "BGP stays Cilium's": what the plugin learns about eth0 at ADD (from the first
// plugin's prevResult, never from the pod itself) and the `podlegs.io/bgp-peer` record derived
// from it. In static mode the record is a file, <stateDir>/bgp-peer/<containerId>.json; in
// Kubernetes mode the same JSON is the pod annotation.
import * as fs from 'fs';
import * as path from 'path';
import { removeFileAndTemps, writeFileAtomic } from '../../overlay/fs/atomic-write';
import * as ipaddr from 'ipaddr.js';
import type { Result } from './versions';

export const BGP_PEER_ANNOTATION = 'podlegs.io/bgp-peer';
export const BGP_ASN_ANNOTATION = 'podlegs.io/bgp-asn';

/** eth0 as the first plugin (Cilium; ptp in the lab) reported it. */
export interface Eth0Info {
  ips: string[];      // bare addresses, IPv4 first
  gateway?: string;   // the node-side next hop: the peer address seen from the pod
}

/** The `podlegs.io/bgp-peer` value. */
export interface BgpPeer { address: string; asn?: number }

const bare = (cidrOrIp: string): string => cidrOrIp.split('/')[0];
const isV4 = (ip: string): boolean => ipaddr.isValid(ip) && ipaddr.parse(ip).kind() === 'ipv4';

/**
 * eth0's addresses and gateway from a prevResult: the IPs whose `interface` points at the
 * sandbox interface named `ifname` (all IPs when the result carries no interface indexes);
 * the gateway is that IP's `gateway`, else the next hop of the default route.
 */
export function eth0FromResult(prev: Result | undefined, ifname = 'eth0'): Eth0Info | undefined {
  if (!prev?.ips?.length) return undefined;
  const ifaces = prev.interfaces ?? [];
  const idx = ifaces.findIndex((i) => i.name === ifname && i.sandbox !== undefined && i.sandbox !== '');
  const mine = prev.ips.filter((ip) => ip.interface === undefined || idx < 0 || ip.interface === idx);
  const ips = mine.map((ip) => bare(ip.address)).filter((a) => ipaddr.isValid(a));
  if (ips.length === 0) return undefined;
  ips.sort((a, b) => Number(isV4(b)) - Number(isV4(a)));
  const fromIp = mine.map((ip) => ip.gateway).find((g): g is string => typeof g === 'string' && ipaddr.isValid(g) && isV4(g) === isV4(ips[0]));
  const fromRoute = (prev.routes ?? []).find((r) => (r.dst === '0.0.0.0/0' || r.dst === '::/0') && typeof r.gw === 'string'
    && ipaddr.isValid(r.gw) && isV4(r.gw) === isV4(ips[0]))?.gw;
  const gateway = fromIp ?? fromRoute;
  return gateway ? { ips, gateway } : { ips };
}

/** The annotation/file value, or undefined when eth0 has no gateway to peer with. */
export function bgpPeerOf(eth0: Eth0Info | undefined, asn: number | undefined): BgpPeer | undefined {
  if (!eth0?.gateway) return undefined;
  return asn === undefined ? { address: eth0.gateway } : { address: eth0.gateway, asn };
}

export const bgpPeerDir = (stateDir: string): string => path.join(stateDir, 'bgp-peer');
export const bgpPeerFile = (stateDir: string, containerId: string): string => path.join(bgpPeerDir(stateDir), `${containerId}.json`);

export function writeBgpPeerFile(stateDir: string, containerId: string, peer: BgpPeer): string {
  const file = bgpPeerFile(stateDir, containerId);
  // Rename not made durable: derived from the attachment (its eth0), gone with the pod after a crash.
  writeFileAtomic(file, `${JSON.stringify(peer)}\n`, 0o644, { durableRename: false });
  return file;
}

export function removeBgpPeerFile(stateDir: string, containerId: string): void {
  removeFileAndTemps(bgpPeerFile(stateDir, containerId));
}

export function readBgpPeerFile(stateDir: string, containerId: string): BgpPeer | undefined {
  try {
    return JSON.parse(fs.readFileSync(bgpPeerFile(stateDir, containerId), 'utf8')) as BgpPeer;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
