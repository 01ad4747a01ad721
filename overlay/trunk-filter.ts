// The verdict on frames entering the host from a trunk leg, as a classic BPF program that
// tc runs in direct-action mode on the host side of the trunk veth (clsact ingress).
//
// tc ingress runs before the 802.1Q demultiplexer and before the bridge, so this program
// decides, for every frame the pod sends:
//   untagged                     -> pass (to the native network's bridge) or drop (no native)
//   802.1Q tag with a listed VID -> pass (the kernel hands it to the VLAN's sub-interface)
//   any other tag (other VID, 802.1ad, priority tag VID 0) -> drop
// Without it, a tag with no sub-interface would reach the bridge the veth is a port of
// (the native segment) still tagged, and with no native network untagged frames would reach
// the node's own IP stack.
//
//   ld  vlan_avail ; jeq #0 -> ret UNTAGGED
//   ld  vlan_tpid  ; jne #0x8100 -> ret SHOT
//   ld  vlan_tci   ; and #0xfff
//   jeq #vid1 -> ret OK ; jeq #vid2 -> ret OK ; ...
//   ret SHOT
import type { BpfInsn } from './kernel/kernel';

// Classic BPF opcodes and the kernel's ancillary offsets (linux/filter.h).
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JEQ_K = 0x15;
const RET_K = 0x06;
const SKF_AD_OFF = 0xfffff000; // -0x1000
const SKF_AD_VLAN_TAG = 44;
const SKF_AD_VLAN_TAG_PRESENT = 48;
const SKF_AD_VLAN_TPID = 60;
const ETH_P_8021Q = 0x8100;

/** tc verdicts (linux/pkt_cls.h). */
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

/** At most this many VLANs per trunk: two instructions each, classic BPF allows 4096. */
export const MAX_TRUNK_VLANS = 1024;

const ins = (code: number, k: number, jt = 0, jf = 0): BpfInsn => ({ code, jt, jf, k: k >>> 0 });

export function trunkFilterProgram(vids: number[], native: boolean): BpfInsn[] {
  if (vids.length > MAX_TRUNK_VLANS) throw new Error(`at most ${MAX_TRUNK_VLANS} VLANs per trunk`);
  const p: BpfInsn[] = [
    ins(LD_W_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT),
    ins(JMP_JEQ_K, 0, 0, 1), // untagged: next instruction; tagged: skip it
    ins(RET_K, native ? TC_ACT_OK : TC_ACT_SHOT),
    ins(LD_W_ABS, SKF_AD_OFF + SKF_AD_VLAN_TPID),
    ins(JMP_JEQ_K, ETH_P_8021Q, 1, 0), // 802.1Q: skip the drop
    ins(RET_K, TC_ACT_SHOT),
    ins(LD_W_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG),
    ins(ALU_AND_K, 0x0fff),
  ];
  for (const vid of [...vids].sort((a, b) => a - b)) {
    p.push(ins(JMP_JEQ_K, vid, 0, 1), ins(RET_K, TC_ACT_OK));
  }
  p.push(ins(RET_K, TC_ACT_SHOT));
  return p;
}

/** Reads back what a program lets through (for CHECK and `podlegs status`); undefined if not ours. */
export function describeTrunkFilter(p: BpfInsn[]): { vids: number[]; native: boolean } | undefined {
  if (p.length < 9 || (p.length - 9) % 2 !== 0) return undefined;
  const native = p[2].k === TC_ACT_OK;
  const vids: number[] = [];
  for (let i = 8; i + 1 < p.length; i += 2) vids.push(p[i].k);
  const again = trunkFilterProgram(vids, native);
  const same = again.length === p.length && again.every((x, i) => x.code === p[i].code && x.jt === p[i].jt && x.jf === p[i].jf && x.k === p[i].k);
  return same ? { vids, native } : undefined;
}
