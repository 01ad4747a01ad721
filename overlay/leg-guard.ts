// The leg guard: a classic BPF program that tc runs in direct-action mode on the host side of
// a leg (clsact ingress: every frame the pod sends, before the bridge sees it). It drops
//   - frames whose source MAC is not allowed (the leg's own, declared VRRP virtual MACs,
//     allowedMacs);
//   - ARP whose sender hardware address is not the frame's (already allowed) source MAC, or
//     whose sender IP is not an allowed IPv4 address (0.0.0.0, an RFC 5227 probe, poisons no cache and passes); ARP that
//     is not Ethernet/IPv4;
//   - IPv6 neighbour advertisements whose target, and neighbour solicitations whose source
//     (:: is DAD and passes), is not an allowed IPv6 address. Up to MAX_EXT_HEADERS
//     hop-by-hop / routing / destination-options headers before ICMPv6 are walked; a longer
//     chain is dropped. Fragments and other headers (AH, ESP) are not looked into: Linux
//     ignores fragmented ND (RFC 6980) and AH/ESP need an SA the attacker does not have.
// Everything else passes: forwarded IP traffic is not source-checked (an NF forwards other
// hosts' packets: that is its job). The guard only filters; it never touches the bridge's
// forwarding (an FDB-based allow-list would steer traffic for a VRRP virtual MAC).
//
// Counting: classic BPF has no maps, and a direct-action cls_bpf filter keeps no statistics of
// its own (only tc actions have counters, and this kernel may have no action modules). What
// the kernel does count is every TC_ACT_SHOT at the hook, in the clsact qdisc's drops: one
// counter per guarded device. So a guarded device carries exactly one filter, the guard, and
// its qdisc's drops are the guard's drops.
import type { BpfInsn } from './kernel/kernel';
import * as ipaddr from 'ipaddr.js';
import { parseCidr } from './ip/cidr';

export interface GuardRules {
  /** Source MACs allowed: lower-case aa:bb:cc:dd:ee:ff. */
  macs: string[];
  /** ARP sender / ND addresses allowed: "addr/len" prefixes (a plain address is /32 or /128). */
  addresses: string[];
}

export const MAX_EXT_HEADERS = 4;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

const LD_W_ABS = 0x20, LD_H_ABS = 0x28, LD_B_ABS = 0x30, LD_W_IND = 0x40, LD_B_IND = 0x50, LD_MEM = 0x60;
const LDX_IMM = 0x01, ST = 0x02, ALU_ADD_K = 0x04, ALU_ADD_X = 0x0c, ALU_LSH_K = 0x64, ALU_AND_K = 0x54;
const TAX = 0x07, JA = 0x05, JEQ_K = 0x15, JEQ_X = 0x1d, RET_K = 0x06;
const ETH_P_ARP = 0x0806, ETH_P_IPV6 = 0x86dd;
const IPPROTO_ICMPV6 = 58;
const EXT_HEADERS = [0, 43, 60]; // hop-by-hop, routing, destination options: length (n+1)*8
const ND_NS = 135, ND_NA = 136;

/** The VRRP virtual router MAC (RFC 5798 §7.3): 00:00:5e:00:01:VRID (IPv4), 00:00:5e:00:02:VRID (IPv6). */
export const vrrpMac = (vrid: number, family: 4 | 6): string => `00:00:5e:00:0${family === 4 ? 1 : 2}:${vrid.toString(16).padStart(2, '0')}`;

/** The EUI-64 link-local address the kernel derives from a MAC (addr_gen_mode eui64, the default). */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const bytes = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
  return ipaddr.fromByteArray(bytes).toString();
}

// A tiny assembler: jumps name labels, resolved once positions are known.
type Target = string | number; // label, or a relative offset
interface Item { code: number; k?: number; jt?: Target; jf?: Target; ja?: string }
type Line = Item | { label: string };

function assemble(lines: Line[]): BpfInsn[] {
  const pos = new Map<string, number>();
  const items: Item[] = [];
  for (const l of lines) {
    if ('label' in l) pos.set(l.label, items.length);
    else items.push(l);
  }
  const rel = (t: Target | undefined, at: number, max: number): number => {
    if (t === undefined) return 0;
    const d = typeof t === 'number' ? t : (pos.get(t) ?? NaN) - at - 1;
    if (!Number.isInteger(d) || d < 0 || d > max) throw new Error(`guard program: jump to ${t} out of range (${d})`);
    return d;
  };
  return items.map((it, i) => ({
    code: it.code,
    jt: rel(it.jt, i, 255),
    jf: rel(it.jf, i, 255),
    k: (it.ja !== undefined ? rel(it.ja, i, 0xffff) : (it.k ?? 0)) >>> 0,
  }));
}

let labels = 0;
const fresh = (p: string): string => `${p}${labels++}`;

/** MAC at byte offset `at` is one of macs → continue at `ok`; else drop. */
function macBlock(at: number, macs: string[], ok: string): Line[] {
  const out: Line[] = [];
  for (const mac of macs) {
    const b = mac.split(':').map((h) => parseInt(h, 16));
    const hi = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    const lo = (b[4] << 8) | b[5];
    out.push({ code: LD_H_ABS, k: at + 4 }, { code: JEQ_K, k: lo, jf: 3 }, { code: LD_W_ABS, k: at }, { code: JEQ_K, k: hi, jf: 1 }, { code: JA, ja: ok });
  }
  out.push({ code: RET_K, k: TC_ACT_SHOT });
  return out;
}

/** The 32-bit words of a prefix with their masks (only words the prefix covers). */
function prefixWords(p: string): { word: number; mask: number; value: number }[] {
  const [ip, len] = p.includes('/') ? parseCidr(p) : [ipaddr.parse(p), ipaddr.parse(p).kind() === 'ipv4' ? 32 : 128];
  const bytes = ip.toByteArray();
  const out: { word: number; mask: number; value: number }[] = [];
  for (let w = 0; w * 32 < len; w++) {
    const bits = Math.min(32, len - w * 32);
    const mask = bits === 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0;
    const v = ((bytes[w * 4] << 24) | (bytes[w * 4 + 1] << 16) | (bytes[w * 4 + 2] << 8) | bytes[w * 4 + 3]) >>> 0;
    out.push({ word: w, mask, value: (v & mask) >>> 0 });
  }
  return out;
}

/** The guard is longer than classic BPF allows (4096 instructions): the lists are too long. */
export class GuardTooLarge extends Error {}

/**
 * The address at `at` is in one of prefixes → pass; else drop. `at` is a byte offset, or with
 * `mem` the first of the scratch words M[0..3] holding it (an IPv6 address copied there once).
 */
function addressBlock(at: number, mem: boolean, prefixes: string[]): Line[] {
  const out: Line[] = [];
  for (const p of prefixes) {
    const next = fresh('np');
    const words = prefixWords(p);
    for (const w of words) {
      out.push(mem ? { code: LD_MEM, k: at + w.word } : { code: LD_W_ABS, k: at + 4 * w.word });
      if (w.mask !== 0xffffffff) out.push({ code: ALU_AND_K, k: w.mask });
      out.push({ code: JEQ_K, k: w.value, jf: next });
    }
    out.push({ code: RET_K, k: TC_ACT_OK }, { label: next });
  }
  out.push({ code: RET_K, k: TC_ACT_SHOT });
  return out;
}

const family = (p: string): 4 | 6 => (ipaddr.parse(p.split('/')[0]).kind() === 'ipv4' ? 4 : 6);

/** The guard for one leg; deterministic in its rules (CHECK compares programs). */
export function guardProgram(rules: GuardRules): BpfInsn[] {
  const macs = [...new Set(rules.macs)].sort();
  const v4 = [...new Set(rules.addresses.filter((a) => family(a) === 4))].sort();
  const v6 = [...new Set(rules.addresses.filter((a) => family(a) === 6))].sort();
  labels = 0;
  const lines: Line[] = [
    ...macBlock(6, macs, 'srcok'),
    { label: 'srcok' },
    { code: LD_H_ABS, k: 12 },
    { code: JEQ_K, k: ETH_P_ARP, jt: 1 },
    { code: JA, ja: 'notarp' },
    // ARP: Ethernet/IPv4 only (htype 1, ptype 0x0800, hlen 6, plen 4); the sender MAC (22) is
    // the frame's source MAC (6), the sender IP (28) an allowed address.
    { code: LD_W_ABS, k: 14 }, { code: JEQ_K, k: 0x00010800, jt: 1 }, { code: RET_K, k: TC_ACT_SHOT },
    { code: LD_H_ABS, k: 18 }, { code: JEQ_K, k: 0x0604, jt: 1 }, { code: RET_K, k: TC_ACT_SHOT },
    { code: LD_W_ABS, k: 22 }, { code: TAX }, { code: LD_W_ABS, k: 6 }, { code: JEQ_X, jt: 1 }, { code: RET_K, k: TC_ACT_SHOT },
    { code: LD_H_ABS, k: 26 }, { code: TAX }, { code: LD_H_ABS, k: 10 }, { code: JEQ_X, jt: 1 }, { code: RET_K, k: TC_ACT_SHOT },
    { code: LD_W_ABS, k: 28 }, { code: JEQ_K, k: 0, jf: 1 }, { code: RET_K, k: TC_ACT_OK },
    ...addressBlock(28, false, v4),
    { label: 'notarp' },
    { code: JEQ_K, k: ETH_P_IPV6, jt: 1 },
    { code: RET_K, k: TC_ACT_OK },
    { code: LDX_IMM, k: 54 },   // X: offset of the header after the fixed IPv6 header
    { code: LD_B_ABS, k: 20 },  // A: its type (next header)
  ];
  for (let i = 0; i <= MAX_EXT_HEADERS; i++) {
    lines.push({ code: JEQ_K, k: IPPROTO_ICMPV6, jf: 1 }, { code: JA, ja: 'icmp' });
    const ext = fresh('ext');
    lines.push(...EXT_HEADERS.map((t): Item => ({ code: JEQ_K, k: t, jt: ext })));
    lines.push({ code: RET_K, k: TC_ACT_OK }, { label: ext });
    if (i === MAX_EXT_HEADERS) { lines.push({ code: RET_K, k: TC_ACT_SHOT }); break; }
    lines.push(
      { code: LD_B_IND, k: 0 }, { code: ST, k: 0 },                    // M[0] = its next header
      { code: LD_B_IND, k: 1 }, { code: ALU_ADD_K, k: 1 }, { code: ALU_LSH_K, k: 3 }, { code: ALU_ADD_X }, { code: TAX }, // X += (len+1)*8
      { code: LD_MEM, k: 0 },
    );
  }
  lines.push(
    { label: 'icmp' },
    { code: LD_B_IND, k: 0 },
    { code: JEQ_K, k: ND_NA, jf: 1 }, { code: JA, ja: 'na' },
    { code: JEQ_K, k: ND_NS, jt: 1 }, { code: RET_K, k: TC_ACT_OK },
    // NS: the IPv6 source (bytes 22..37) into M[0..3]; :: is duplicate address detection.
    { code: LD_W_ABS, k: 22 }, { code: ST, k: 0 }, { code: LD_W_ABS, k: 26 }, { code: ST, k: 1 },
    { code: LD_W_ABS, k: 30 }, { code: ST, k: 2 }, { code: LD_W_ABS, k: 34 }, { code: ST, k: 3 },
    { code: LD_MEM, k: 0 }, { code: JEQ_K, k: 0, jf: 'v6' }, { code: LD_MEM, k: 1 }, { code: JEQ_K, k: 0, jf: 'v6' },
    { code: LD_MEM, k: 2 }, { code: JEQ_K, k: 0, jf: 'v6' }, { code: LD_MEM, k: 3 }, { code: JEQ_K, k: 0, jf: 'v6' },
    { code: RET_K, k: TC_ACT_OK },
    // NA: the target address, 8 bytes into the ICMPv6 header, into M[0..3].
    { label: 'na' },
    { code: LD_W_IND, k: 8 }, { code: ST, k: 0 }, { code: LD_W_IND, k: 12 }, { code: ST, k: 1 },
    { code: LD_W_IND, k: 16 }, { code: ST, k: 2 }, { code: LD_W_IND, k: 20 }, { code: ST, k: 3 },
    { label: 'v6' },
    ...addressBlock(0, true, v6),
  );
  const prog = assemble(lines);
  if (prog.length > 4096) throw new GuardTooLarge(`the leg guard would need ${prog.length} classic BPF instructions (${macs.length} MACs, ${v4.length} IPv4 and ${v6.length} IPv6 addresses); at most 4096: declare fewer MACs, VIPs or addresses (a prefix covers many)`);
  return prog;
}

/** Whether an installed program is exactly the guard for rules (CHECK, status). */
export function isGuardFor(prog: BpfInsn[], rules: GuardRules): boolean {
  const want = guardProgram(rules);
  return want.length === prog.length && want.every((x, i) => x.code === prog[i].code && x.jt === prog[i].jt && x.jf === prog[i].jf && x.k === prog[i].k);
}

/** What a leg's `security` declares beyond its own MAC and addresses (mode "enforce" only). */
export interface GuardConf {
  vrrp: { vrid: number; vips: string[] }[];
  allowedMacs: string[];
  allowedAddresses: string[]; // addresses or prefixes
}

/** The allow-lists of one leg: its own MAC and addresses, the declared VRRP routers, the extras. */
export function guardRules(own: { mac: string; ips: string[] }, g: GuardConf): GuardRules {
  const vmacs = g.vrrp.flatMap((r) => [...new Set(r.vips.map((v) => (ipaddr.parse(v).kind() === 'ipv4' ? 4 : 6) as 4 | 6))].map((f) => vrrpMac(r.vrid, f)));
  const macs = [own.mac, ...vmacs, ...g.allowedMacs];
  const single = (ip: string): string => `${ip}/${ipaddr.parse(ip).kind() === 'ipv4' ? 32 : 128}`;
  return {
    macs,
    addresses: [
      ...own.ips.map((c) => single(c.split('/')[0])),
      ...macs.map((m) => single(eui64LinkLocal(m))), // the link-local address each allowed MAC gives a Linux interface
      ...g.vrrp.flatMap((r) => r.vips.map(single)),
      ...g.allowedAddresses.map((a) => (a.includes('/') ? a : single(a))),
    ],
  };
}
