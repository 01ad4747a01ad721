// The kernel adapter: the only module that imports `netlink`. Everything above
// it speaks in links, addresses and flood entries, never in IFLA_* numbers.
import * as fs from 'fs';
import * as ipaddr from 'ipaddr.js';
import type { RtNetlinkSocket } from 'netlink';
import { createNetlink, NetlinkSocket } from 'netlink/dist/netlink';
import { encode, decode, u8, u16be, u32, str, cstr, Nla } from './nla';
import { parseCidr } from '../ip/cidr';
import { toKernelError, isNotFound, isExists, KernelError } from './errors';
import { inNetns } from './netns';

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;

// Raw netlink framing for the batched FDB path (see fdbBatch).
const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19, NEWADDR: 20, GETADDR: 22, GETNEIGH: 30 } as const;
const NLM_F_DUMP = 0x300;
const IFF_UP = 0x1;
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
const IFA_F_NODAD = 0x02;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const NLM_F = { REQUEST: 0x1, ACK: 0x4, ECHO: 0x8, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800 } as const;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;
const NDA = { DST: 1, LLADDR: 2 } as const;

// rtnetlink attribute numbers, kept here and nowhere else.
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, GROUP: 27, NET_NS_FD: 28 } as const;
const INFO = { KIND: 1, DATA: 2 } as const;
const VETH_INFO_PEER = 1;
const VXLAN = { ID: 1, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, LOCAL6: 17 } as const;
const BR = { MCAST_SNOOPING: 23 } as const;
// Trunk legs: 802.1Q sub-interfaces (IFLA_LINK = parent, IFLA_VLAN_*) and a tc ingress filter.
const VLAN = { ID: 1, PROTOCOL: 5 } as const;
const ETH_P_ALL = 0x0003;
const TC_H_CLSACT = 0xfffffff1;
const TC_H_CLSACT_HANDLE = 0xffff0000;
const TC_H_CLSACT_INGRESS = 0xfffffff2; // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
const TCA_BPF = { OPS_LEN: 4, OPS: 5, FLAGS: 8 } as const;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
const TCA_STATS_QUEUE = 3; // in TCA_STATS2
const u16le = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };

export interface VxlanInfo { vni: number; local?: string; port: number; underlayIndex?: number }
export interface LinkInfo {
  index: number;
  name: string;
  kind?: string;
  mtu: number;
  mac: string;
  up: boolean;
  master?: number;
  vxlan?: VxlanInfo;
  parent?: number;    // IFLA_LINK: the lower device of a VLAN sub-interface
  vlan?: { id: number; protocol: number };
}
/** One classic BPF instruction (struct sock_filter). */
export interface BpfInsn { code: number; jt: number; jf: number; k: number }
export interface AddressInfo { index: number; address: string; prefixLen: number; family: 4 | 6 }
export interface RouteInfo { dst?: string; dstLen: number; gateway?: string; oif?: number; prefsrc?: string }
export interface FdbEntry { mac: string; dst: string }
/** One change to a VXLAN device's forwarding database (all-zero MAC = flood entry). */
export interface FdbChange { op: 'add' | 'del'; vxlanIndex: number; mac: string; dst: string }
export interface FdbFailure { change: FdbChange; error: KernelError }

/** Set at creation, in the same request. */
export interface LinkCreateOptions { mtu?: number; master?: number; up?: boolean }

export const ZERO_MAC = '00:00:00:00:00:00';
const macToString = (b?: Buffer): string =>
  b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : '';
const macToBuffer = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
const ipToBuffer = (ip: string): Buffer => Buffer.from(ipaddr.parse(ip).toByteArray());
// IPv4 by hand: dumps (addresses, FDB) convert many; ipaddr.js only for IPv6's RFC 5952 form.
const ipFromBuffer = (b: Buffer): string => (b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : ipaddr.fromByteArray([...b]).toString());

function ifinfomsg(index = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16); // family, pad, type, index, flags, change
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** A netlink connection bound to one network namespace. */
export class Kernel {
  private rtSock?: RtNetlinkSocket;
  private constructor(private readonly nl: NetlinkSocket, readonly netns?: string) {}

  /** Opens a connection in the current namespace, or in the netns at nsPath. */
  static open(nsPath?: string): Kernel {
    const nl = nsPath ? inNetns(nsPath, () => createNetlink(NETLINK_ROUTE)) : createNetlink(NETLINK_ROUTE);
    // Room for a large FDB dump and for the error replies of a whole fdbBatch chunk.
    try { nl.setRecvBufferSize(1 << 20); } catch { /* the default still works, slower */ }
    return new Kernel(nl, nsPath);
  }

  close(): void {
    this.nl.socket.close();
  }

  /**
   * node-netlink's rtnetlink layer, for the requests framed there (routes, neighbours one by
   * one, tc), made on first use: loading it costs a CNI process ~3 ms of module set-up, and once
   * made it parses every message the socket receives. Links, addresses and the FDB, what
   * ADD and DEL use, are framed and parsed here instead.
   */
  private get rt(): RtNetlinkSocket {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (!this.rtSock) this.rtSock = new (require('netlink/dist/rt/rt') as typeof import('netlink/dist/rt/rt')).RtNetlinkSocket(this.nl);
    return this.rtSock;
  }

  /** One request framed here; the replies' payloads (NLMSG_DONE and the ACK left out), or a KernelError. */
  private async raw(op: string, type: number, flags: number, body: Buffer): Promise<{ type: number; data: Buffer }[]> {
    const [msgs] = await this.call(op, () => this.nl.request(type, body, { flags }));
    return msgs.filter((m) => m.type !== NLMSG_ERROR && m.type !== NLMSG_DONE);
  }

  /**
   * One request at a time on this socket. The kernel refuses a dump while another one on the
   * same socket is unfinished (EBUSY), and node-netlink groups a dump's parts per socket, so a
   * reply arriving between them would cut it short: callers that share a Kernel (the agent's
   * reconciler, trunk edits, hot-plug) may well ask at the same time.
   */
  private turn: Promise<unknown> = Promise.resolve();
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return this.serial(async () => {
      try {
        return await fn();
      } catch (e) {
        throw toKernelError(op, e);
      }
    });
  }

  // ---- links ----

  /**
   * Link requests and their replies, framed and parsed here (ifinfomsg + the attributes
   * LinkInfo needs): node-netlink's generic parser decodes every IFLA attribute of every
   * reply, ~1 ms per link on a fresh CNI process, and a dump of a node with many pods is
   * hundreds of links. node-netlink still sends, matches replies and reports errors.
   */
  private async linkRequest(op: string, type: number, flags: number, body: Buffer): Promise<LinkInfo[]> {
    return (await this.raw(op, type, flags, body)).filter((m) => m.type === RTM.NEWLINK).map((m) => parseLinkMessage(m.data));
  }

  links(): Promise<LinkInfo[]> {
    return this.linkRequest('dump links', RTM.GETLINK, NLM_F_DUMP, ifinfomsg());
  }

  async linkByName(name: string): Promise<LinkInfo | undefined> {
    try {
      return (await this.linkRequest(`get link ${name}`, RTM.GETLINK, 0, Buffer.concat([ifinfomsg(), encode([{ type: IFLA.IFNAME, value: str(name) }])])))[0];
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async linkByIndex(index: number): Promise<LinkInfo | undefined> {
    try {
      return (await this.linkRequest(`get link #${index}`, RTM.GETLINK, 0, ifinfomsg(index)))[0];
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Creates a link; master and up are set in the same request (one round trip less each).
   * NLM_F_ECHO: the kernel (5.19+) answers with the new link itself, so no GETLINK follows;
   * its echo is sent before the master is attached, and the request succeeding means it was,
   * so master is the one asked for. Without an echo (older kernels) the link is looked up.
   */
  private async newLink(op: string, name: string, linkinfo: Nla[], extra: LinkCreateOptions & { mac?: string; link?: number } = {}): Promise<LinkInfo> {
    const attrs: Nla[] = [{ type: IFLA.IFNAME, value: str(name) }];
    if (extra.mtu) attrs.push({ type: IFLA.MTU, value: u32(extra.mtu) });
    if (extra.mac) attrs.push({ type: IFLA.ADDRESS, value: macToBuffer(extra.mac) });
    if (extra.link) attrs.push({ type: IFLA.LINK, value: u32(extra.link) });
    if (extra.master) attrs.push({ type: IFLA.MASTER, value: u32(extra.master) });
    attrs.push({ type: IFLA.LINKINFO, value: linkinfo });
    const up = extra.up ? IFF_UP : 0;
    const echo = (await this.linkRequest(op, RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL | NLM_F.ECHO,
      Buffer.concat([ifinfomsg(0, up, up), encode(attrs)]))).find((l) => l.name === name && l.index);
    if (echo) {
      if (extra.master) echo.master = extra.master;
      return echo;
    }
    const link = await this.linkByName(name);
    if (!link) throw toKernelError(op, { code: 'ENODEV' });
    return link;
  }

  /** A bridge with multicast snooping off: NF segments behave like a hub for multicast. */
  createBridge(name: string, opts: LinkCreateOptions = {}): Promise<LinkInfo> {
    return this.newLink(`create bridge ${name}`, name, [
      { type: INFO.KIND, value: str('bridge') },
      { type: INFO.DATA, value: [{ type: BR.MCAST_SNOOPING, value: u8(0) }] },
    ], opts);
  }

  /** A VXLAN device without learning: flooding and MACs are programmed explicitly. */
  createVxlan(name: string, v: VxlanInfo & LinkCreateOptions): Promise<LinkInfo> {
    const data: Nla[] = [
      { type: VXLAN.ID, value: u32(v.vni) },
      { type: VXLAN.PORT, value: u16be(v.port) },
      { type: VXLAN.LEARNING, value: u8(0) },
    ];
    if (v.underlayIndex) data.push({ type: VXLAN.LINK, value: u32(v.underlayIndex) });
    if (v.local) {
      const ip = ipaddr.parse(v.local);
      data.push({ type: ip.kind() === 'ipv4' ? VXLAN.LOCAL : VXLAN.LOCAL6, value: Buffer.from(ip.toByteArray()) });
    }
    return this.newLink(`create vxlan ${name}`, name, [
      { type: INFO.KIND, value: str('vxlan') },
      { type: INFO.DATA, value: data },
    ], { mtu: v.mtu, master: v.master, up: v.up });
  }

  /** A veth pair: hostName here, peerName inside the netns at peerNetns. */
  async createVeth(hostName: string, peerName: string, peerNetns: string, opts: { mtu: number; peerMac?: string; master?: number; up?: boolean }): Promise<LinkInfo> {
    const fd = fs.openSync(peerNetns, 'r');
    try {
      const peerAttrs: Nla[] = [
        { type: IFLA.IFNAME, value: str(peerName) },
        { type: IFLA.MTU, value: u32(opts.mtu) },
        { type: IFLA.NET_NS_FD, value: u32(fd) },
      ];
      if (opts.peerMac) peerAttrs.push({ type: IFLA.ADDRESS, value: macToBuffer(opts.peerMac) });
      return await this.newLink(`create veth ${hostName}/${peerName}`, hostName, [
        { type: INFO.KIND, value: str('veth') },
        { type: INFO.DATA, value: [{ type: VETH_INFO_PEER, value: Buffer.concat([ifinfomsg(), encode(peerAttrs)]) }] },
      ], { mtu: opts.mtu, master: opts.master, up: opts.up });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** An 802.1Q sub-interface of parentIndex for VLAN vid (created down). */
  createVlan(name: string, parentIndex: number, vid: number, opts: { mtu?: number } = {}): Promise<LinkInfo> {
    return this.newLink(`create vlan ${name}`, name, [
      { type: INFO.KIND, value: str('vlan') },
      { type: INFO.DATA, value: [{ type: VLAN.ID, value: u16le(vid) }] },
    ], { mtu: opts.mtu, link: parentIndex });
  }

  /**
   * Whether the kernel can create links of this kind, without creating one: the request leaves
   * out the kind's mandatory attributes (a VLAN's lower device), so a known kind refuses it
   * (EINVAL) while an unknown one, whose module is missing and cannot be loaded, answers
   * EOPNOTSUPP "Unknown device type". `probeName` must not exist.
   */
  async hasLinkKind(kind: string, probeName: string): Promise<boolean> {
    try {
      await this.raw(`probe link kind ${kind}`, RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, Buffer.concat([ifinfomsg(), encode([
        { type: IFLA.IFNAME, value: str(probeName) },
        { type: IFLA.LINKINFO, value: [{ type: INFO.KIND, value: str(kind) }] },
      ])]));
      await this.deleteLinkByName(probeName); // a kind with no mandatory attribute: it exists
      return true;
    } catch (e) {
      if (e instanceof KernelError && e.is('EOPNOTSUPP')) return false;
      if (e instanceof KernelError && e.is('EPERM', 'EACCES')) throw e;
      return true;
    }
  }

  // ---- tc (trunk legs: a classic BPF verdict on the host side's ingress) ----

  /** A clsact qdisc on the link (EEXIST is fine): the hook ingress filters attach to. */
  async addClsact(index: number): Promise<void> {
    try {
      await this.call(`add clsact qdisc on #${index}`, () => this.rt.newQdisc(
        { ifindex: index, handle: TC_H_CLSACT_HANDLE, parent: TC_H_CLSACT }, { kind: 'clsact' },
        { flags: NLM_F.CREATE | NLM_F.EXCL }));
    } catch (e) {
      if (!isExists(e)) throw e;
    }
  }

  /** Attaches a classic BPF program in direct-action mode to the link's ingress (all protocols). */
  addIngressBpf(index: number, prog: BpfInsn[], pref = 1): Promise<void> {
    return this.writeIngressBpf(index, prog, pref, false);
  }

  /**
   * Swaps the program of the ingress filter addIngressBpf made (same pref and handle) in one
   * request: cls_bpf replaces it under RCU, so every frame meets either the old program or the
   * new one, never none. Creates the filter when there is none.
   */
  replaceIngressBpf(index: number, prog: BpfInsn[], pref = 1): Promise<void> {
    return this.writeIngressBpf(index, prog, pref, true);
  }

  private async writeIngressBpf(index: number, prog: BpfInsn[], pref: number, replace: boolean): Promise<void> {
    const ops = Buffer.alloc(prog.length * 8);
    prog.forEach((i, n) => {
      ops.writeUInt16LE(i.code, n * 8);
      ops.writeUInt8(i.jt, n * 8 + 2);
      ops.writeUInt8(i.jf, n * 8 + 3);
      ops.writeUInt32LE(i.k >>> 0, n * 8 + 4);
    });
    const info = ((pref << 16) | ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8)) >>> 0; // prio, htons(protocol)
    await this.call(`${replace ? 'replace' : 'add'} bpf ingress filter on #${index}`, () => this.rt.newTrafficFilter(
      { ifindex: index, parent: TC_H_CLSACT_INGRESS, handle: 1, info },
      { kind: 'bpf', options: encode([
        { type: TCA_BPF.OPS_LEN, value: u16le(prog.length) },
        { type: TCA_BPF.OPS, value: ops },
        { type: TCA_BPF.FLAGS, value: u32(TCA_BPF_FLAG_ACT_DIRECT) },
      ]) },
      { flags: NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL) }));
  }

  /** The classic BPF filters on the link's ingress; [] when there is no clsact qdisc. */
  async ingressBpf(index: number): Promise<{ pref: number; directAction: boolean; prog: BpfInsn[] }[]> {
    let msgs;
    try {
      msgs = await this.call(`dump ingress filters of #${index}`, () => this.rt.getTrafficFilters({ ifindex: index, parent: TC_H_CLSACT_INGRESS }));
    } catch (e) {
      if (e instanceof KernelError && e.is('EINVAL', 'ENOENT', 'EOPNOTSUPP')) return [];
      throw e;
    }
    const out: { pref: number; directAction: boolean; prog: BpfInsn[] }[] = [];
    for (const m of msgs) {
      if (m.attrs.kind !== 'bpf' || !m.attrs.options) continue;
      const o = decode(m.attrs.options);
      const ops = o.get(TCA_BPF.OPS);
      if (!ops) continue;
      const prog: BpfInsn[] = [];
      for (let off = 0; off + 8 <= ops.length; off += 8) {
        prog.push({ code: ops.readUInt16LE(off), jt: ops.readUInt8(off + 2), jf: ops.readUInt8(off + 3), k: ops.readUInt32LE(off + 4) });
      }
      const flags = o.get(TCA_BPF.FLAGS)?.readUInt32LE(0) ?? 0;
      out.push({ pref: (m.data.info ?? 0) >>> 16, directAction: (flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0, prog });
    }
    return out;
  }

  /**
   * Frames the clsact qdisc of each link dropped (TC_ACT_SHOT of its filters), by ifindex, in
   * one dump: links without a clsact qdisc are absent. The kernel's only per-hook drop counter.
   */
  async clsactDrops(): Promise<Map<number, number>> {
    const msgs = await this.call('dump qdiscs', () => this.rt.getQdiscs());
    const out = new Map<number, number>();
    for (const m of msgs) {
      if (m.attrs.kind !== 'clsact' || !m.data.ifindex) continue;
      const queue = m.attrs.stats2 ? decode(m.attrs.stats2).get(TCA_STATS_QUEUE) : undefined;
      // struct gnet_stats_queue { qlen, backlog, drops, ... }; else the old struct tc_stats { bytes u64, packets, drops, ... }
      const drops = queue && queue.length >= 12 ? queue.readUInt32LE(8) : m.attrs.stats && m.attrs.stats.length >= 16 ? m.attrs.stats.readUInt32LE(12) : 0;
      out.set(m.data.ifindex, drops);
    }
    return out;
  }

  async setLink(index: number, change: { up?: boolean; master?: number; mtu?: number; mac?: string }): Promise<void> {
    const attrs: Nla[] = [];
    if (change.master !== undefined) attrs.push({ type: IFLA.MASTER, value: u32(change.master) });
    if (change.mtu !== undefined) attrs.push({ type: IFLA.MTU, value: u32(change.mtu) });
    if (change.mac !== undefined) attrs.push({ type: IFLA.ADDRESS, value: macToBuffer(change.mac) });
    const hdr = change.up === undefined ? ifinfomsg(index) : ifinfomsg(index, change.up ? IFF_UP : 0, IFF_UP);
    await this.raw(`set link #${index}`, RTM.SETLINK, 0, Buffer.concat([hdr, encode(attrs)]));
  }

  /** Deletes a link; false when it was already gone. */
  async deleteLink(index: number): Promise<boolean> {
    try {
      await this.raw(`delete link #${index}`, RTM.DELLINK, 0, ifinfomsg(index));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Deletes several links in one kernel transaction: they join a fresh interface group, then
   * the group is deleted. Unregistering devices one by one waits for RCU each time (~25 ms
   * per link here); a group goes in one batch. Links already gone are skipped.
   */
  async deleteLinks(indexes: number[]): Promise<void> {
    if (indexes.length <= 1) {
      for (const i of indexes) await this.deleteLink(i);
      return;
    }
    const group = 0x10000000 + Math.floor(Math.random() * 0x6fffffff);
    for (const index of indexes) {
      try {
        await this.raw(`set group of link #${index}`, RTM.SETLINK, 0, Buffer.concat([ifinfomsg(index), encode([{ type: IFLA.GROUP, value: u32(group) }])]));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    await this.raw(`delete link group ${group}`, RTM.DELLINK, 0, Buffer.concat([ifinfomsg(), encode([{ type: IFLA.GROUP, value: u32(group) }])]));
  }

  async deleteLinkByName(name: string): Promise<boolean> {
    const l = await this.linkByName(name);
    return l ? this.deleteLink(l.index) : false;
  }

  // ---- addresses and routes ----

  async addresses(index?: number): Promise<AddressInfo[]> {
    // struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index }, then IFA_* attributes.
    const msgs = await this.raw('dump addresses', RTM.GETADDR, NLM_F_DUMP, Buffer.alloc(8));
    const out: AddressInfo[] = [];
    for (const { type, data } of msgs) {
      if (type !== RTM.NEWADDR || data.length < 8) continue;
      const family = data[0];
      const at = data.readUInt32LE(4);
      if ((index !== undefined && at !== index) || (family !== AF_INET && family !== AF_INET6)) continue;
      const a = decode(data.subarray(8), [IFA.ADDRESS, IFA.LOCAL]);
      const raw = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
      if (!raw) continue;
      out.push({ index: at, address: ipFromBuffer(raw), prefixLen: data[1], family: family === AF_INET ? 4 : 6 });
    }
    return out;
  }

  /** Adds addr/prefix to a link; an identical address already present is fine. */
  async addAddress(index: number, cidr: string): Promise<void> {
    const [ip, len] = parseCidr(cidr);
    const bytes = Buffer.from(ip.toByteArray());
    const family = ip.kind() === 'ipv4' ? AF_INET : AF_INET6;
    const hdr = Buffer.alloc(8);
    hdr.writeUInt8(family, 0);
    hdr.writeUInt8(len, 1);
    hdr.writeUInt8(family === AF_INET6 ? IFA_F_NODAD : 0, 2);
    hdr.writeUInt32LE(index, 4);
    try {
      await this.raw(`add address ${cidr}`, RTM.NEWADDR, NLM_F.CREATE | NLM_F.EXCL,
        Buffer.concat([hdr, encode([{ type: IFA.LOCAL, value: bytes }, { type: IFA.ADDRESS, value: bytes }])]));
    } catch (e) {
      if (!isExists(e)) throw e;
    }
  }

  async routes(family: 4 | 6 = 4): Promise<RouteInfo[]> {
    const msgs = await this.call('dump routes', () => this.rt.getRoutes({ family: family === 4 ? AF_INET : AF_INET6 }));
    return msgs
      .filter((m) => (m.attrs.table ?? m.data.table) === 254)
      .map((m) => ({
        dst: m.attrs.dst ? ipFromBuffer(m.attrs.dst) : undefined,
        dstLen: m.data.dstLen ?? 0,
        gateway: m.attrs.gateway ? ipFromBuffer(m.attrs.gateway) : undefined,
        oif: m.attrs.oif,
        prefsrc: m.attrs.prefsrc ? ipFromBuffer(m.attrs.prefsrc) : undefined,
      }));
  }

  /** Adds a unicast route in the main table (idempotent). */
  async addRoute(dst: string, opts: { gateway?: string; oif?: number }): Promise<void> {
    const [ip, len] = parseCidr(dst);
    const family = ip.kind() === 'ipv4' ? AF_INET : AF_INET6;
    const attrs: Record<string, unknown> = { dst: Buffer.from(ip.toByteArray()) };
    if (opts.gateway) attrs.gateway = ipToBuffer(opts.gateway);
    if (opts.oif) attrs.oif = opts.oif;
    try {
      await this.call(`add route ${dst}`, () => this.rt.newRoute(
        { family, dstLen: len, table: 254, protocol: 'BOOT', scope: opts.gateway ? 'UNIVERSE' : 'LINK', type: 'UNICAST' } as never,
        attrs, { flags: NLM_F.CREATE | NLM_F.EXCL }));
    } catch (e) {
      if (!isExists(e)) throw e;
    }
  }

  // ---- VXLAN forwarding database ----

  async fdb(vxlanIndex: number): Promise<FdbEntry[]> {
    return (await this.fdbAll()).filter((e) => e.ifindex === vxlanIndex).map(({ mac, dst }) => ({ mac, dst }));
  }

  /** Every VXLAN FDB entry of the namespace with a remote destination, in one dump. */
  async fdbAll(): Promise<(FdbEntry & { ifindex: number; permanent: boolean })[]> {
    // struct ndmsg { u8 family, pad, u16 pad; s32 ifindex; u16 state; u8 flags, type }, then NDA_*.
    const req = Buffer.alloc(12);
    req.writeUInt8(AF_BRIDGE, 0);
    const msgs = await this.raw('dump fdb', RTM.GETNEIGH, NLM_F_DUMP, req);
    const out: (FdbEntry & { ifindex: number; permanent: boolean })[] = [];
    for (const { type, data } of msgs) {
      if (type !== RTM_NEWNEIGH || data.length < 12) continue;
      const a = decode(data.subarray(12), [NDA.DST, NDA.LLADDR]);
      const dst = a.get(NDA.DST);
      const lladdr = a.get(NDA.LLADDR);
      if (!dst || !lladdr) continue;
      out.push({ ifindex: data.readInt32LE(4), mac: macToString(lladdr), dst: ipFromBuffer(dst), permanent: (data.readUInt16LE(8) & NUD_PERMANENT) !== 0 });
    }
    return out;
  }

  /**
   * Applies many FDB changes quickly: `chunk` requests per datagram, only the last of each
   * asking for an ACK. The kernel handles a datagram's messages in order and reports only
   * failures, so the ACK of the last one means the whole chunk is done (≈ `bridge -batch`
   * speed instead of one round trip and one JS promise per entry). "Already there" on add
   * and "already gone" on delete are not failures.
   */
  fdbBatch(changes: FdbChange[], opts: { chunk?: number; timeoutMs?: number } = {}): Promise<FdbFailure[]> {
    return this.serial(() => this.fdbBatchNow(changes, opts));
  }

  private async fdbBatchNow(changes: FdbChange[], opts: { chunk?: number; timeoutMs?: number }): Promise<FdbFailure[]> {
    const chunk = Math.max(1, opts.chunk ?? 128);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const nl = this.nl;
    const failures: FdbFailure[] = [];
    const pending = new Map<number, FdbChange>();
    let lastSeq = -1;
    let done: ((e?: Error) => void) | undefined;
    const onMessage = (msgs: { type: number; seq: number; data: Buffer }[]): void => {
      for (const m of msgs) {
        const change = m.type === NLMSG_ERROR ? pending.get(m.seq) : undefined;
        if (!change) continue;
        pending.delete(m.seq);
        const errno = -m.data.readInt32LE(0);
        if (errno !== 0) {
          const error = toKernelError(`fdb ${change.op} ${change.mac} dst ${change.dst} on #${change.vxlanIndex}`, { errno });
          if (!(change.op === 'add' ? isExists(error) : isNotFound(error))) failures.push({ change, error });
        }
        if (m.seq === lastSeq) done?.();
      }
    };
    const onError = (e: Error): void => done?.(e);
    nl.on('message', onMessage);
    nl.on('error', onError);
    try {
      const encode = neighEncoder();
      for (let i = 0; i < changes.length; i += chunk) {
        const part = changes.slice(i, i + chunk);
        const datagram = encode(part, (c, j) => {
          const seq = nl.generateSeq();
          pending.set(seq, c);
          if (j === part.length - 1) lastSeq = seq;
          return seq;
        });
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(toKernelError('fdb batch: no answer from the kernel', { code: 'ETIMEDOUT' })), timeoutMs);
          done = (e) => { clearTimeout(timer); if (e) reject(toKernelError('fdb batch', e)); else resolve(); };
          nl.socket.send(datagram, {}, (e) => { if (e) done?.(e); });
        });
        pending.clear();
      }
    } finally {
      nl.off('message', onMessage);
      nl.off('error', onError);
    }
    return failures;
  }

  /** Adds a permanent entry mac → remote VTEP (all-zero MAC = flood entry); EEXIST is fine. */
  async fdbAdd(vxlanIndex: number, e: FdbEntry): Promise<void> {
    const flood = e.mac === ZERO_MAC;
    try {
      await this.call(`fdb add ${e.mac} dst ${e.dst}`, () => this.rt.newNeighbor(
        { family: AF_BRIDGE, ifindex: vxlanIndex, state: { permanent: true }, flags: { self: true } },
        { lladdr: macToBuffer(e.mac), dst: ipToBuffer(e.dst) },
        // The all-zero MAC holds a list of destinations: append. A unicast MAC has one: replace.
        { flags: NLM_F.CREATE | (flood ? NLM_F.APPEND : NLM_F.REPLACE) }));
    } catch (err) {
      if (!isExists(err)) throw err;
    }
  }

  /** Removes one entry; false when it was not there. */
  async fdbDelete(vxlanIndex: number, e: FdbEntry): Promise<boolean> {
    try {
      await this.call(`fdb del ${e.mac} dst ${e.dst}`, () => this.rt.delNeighbor(
        { family: AF_BRIDGE, ifindex: vxlanIndex, state: { permanent: true }, flags: { self: true } },
        { lladdr: macToBuffer(e.mac), dst: ipToBuffer(e.dst) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}

/**
 * Frames fdbBatch's datagrams: RTM_NEWNEIGH/RTM_DELNEIGH per change, by hand, written
 * straight into one buffer per datagram (nlmsghdr, ndmsg, NDA_LLADDR, NDA_DST), only the
 * last message asking for an ACK. MACs and destinations are converted once per encoder:
 * 40,000 entries towards 1,000 VTEPs are 1,000 address parses, not 40,000.
 */
function neighEncoder(): (part: FdbChange[], seqOf: (c: FdbChange, j: number) => number) => Buffer {
  const dsts = new Map<string, Buffer>();
  const dstOf = (ip: string): Buffer => {
    let b = dsts.get(ip);
    if (!b) dsts.set(ip, (b = ipToBuffer(ip)));
    return b;
  };
  const HDR = 16;
  const NDMSG = 12;
  const LLADDR = 12; // 4 + 6, padded to 4
  return (part, seqOf) => {
    const sizes = part.map((c) => HDR + NDMSG + LLADDR + 4 + ((dstOf(c.dst).length + 3) & ~3));
    const buf = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
    let off = 0;
    part.forEach((c, j) => {
      const len = sizes[j];
      const ack = j === part.length - 1;
      let flags: number = NLM_F.REQUEST | (ack ? NLM_F.ACK : 0);
      if (c.op === 'add') flags |= NLM_F.CREATE | (c.mac === ZERO_MAC ? NLM_F.APPEND : NLM_F.REPLACE);
      buf.writeUInt32LE(len, off); // len, type, flags, seq, port (0: the kernel fills it in)
      buf.writeUInt16LE(c.op === 'add' ? RTM_NEWNEIGH : RTM_DELNEIGH, off + 4);
      buf.writeUInt16LE(flags, off + 6);
      buf.writeUInt32LE(seqOf(c, j), off + 8);
      let o = off + HDR; // ndmsg: family, pad, pad, ifindex, state, flags, type
      buf.writeUInt8(AF_BRIDGE, o);
      buf.writeInt32LE(c.vxlanIndex, o + 4);
      buf.writeUInt16LE(NUD_PERMANENT, o + 8);
      buf.writeUInt8(NTF_SELF, o + 10);
      o += NDMSG;
      buf.writeUInt16LE(4 + 6, o);
      buf.writeUInt16LE(NDA.LLADDR, o + 2);
      const hex = c.mac;
      for (let k = 0; k < 6; k++) buf[o + 4 + k] = parseInt(hex.slice(k * 3, k * 3 + 2), 16);
      o += LLADDR;
      const dst = dstOf(c.dst);
      buf.writeUInt16LE(4 + dst.length, o);
      buf.writeUInt16LE(NDA.DST, o + 2);
      dst.copy(buf, o + 4);
      off += len;
    });
    return buf;
  };
}

const LINK_ATTRS = [IFLA.ADDRESS, IFLA.IFNAME, IFLA.MTU, IFLA.LINK, IFLA.MASTER, IFLA.LINKINFO];
/** An RTM_NEWLINK message (a GETLINK reply or a NEWLINK echo): ifinfomsg, then attributes. */
function parseLinkMessage(msg: Buffer): LinkInfo {
  const a = decode(msg.subarray(16), LINK_ATTRS);
  const u32At = (t: number): number => { const b = a.get(t); return b && b.length >= 4 ? b.readUInt32LE(0) : 0; };
  const name = a.get(IFLA.IFNAME);
  const link: LinkInfo = { index: msg.readInt32LE(4), name: name ? cstr(name) : '', mtu: u32At(IFLA.MTU), mac: macToString(a.get(IFLA.ADDRESS)), up: (msg.readUInt32LE(8) & IFF_UP) !== 0 };
  if (u32At(IFLA.MASTER)) link.master = u32At(IFLA.MASTER);
  if (u32At(IFLA.LINK)) link.parent = u32At(IFLA.LINK);
  const linkinfo = a.get(IFLA.LINKINFO);
  if (linkinfo) {
    const info = decode(linkinfo);
    const kind = info.get(INFO.KIND);
    if (kind) link.kind = cstr(kind);
    const data = info.get(INFO.DATA);
    if (link.kind === 'vxlan' && data) {
      const d = decode(data);
      const local = d.get(VXLAN.LOCAL) ?? d.get(VXLAN.LOCAL6);
      link.vxlan = {
        vni: d.get(VXLAN.ID)?.readUInt32LE(0) ?? 0,
        port: d.get(VXLAN.PORT)?.readUInt16BE(0) ?? 0,
        ...(local ? { local: ipFromBuffer(local) } : {}),
        ...(d.get(VXLAN.LINK) ? { underlayIndex: d.get(VXLAN.LINK)!.readUInt32LE(0) } : {}),
      };
    }
    if (link.kind === 'vlan' && data) {
      const d = decode(data);
      link.vlan = { id: d.get(VLAN.ID)?.readUInt16LE(0) ?? 0, protocol: d.get(VLAN.PROTOCOL)?.readUInt16BE(0) ?? 0 };
    }
  }
  return link;
}
