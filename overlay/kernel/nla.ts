// Minimal netlink attribute (NLA) encoding and decoding, for the nested
// attributes node-netlink leaves as raw buffers (IFLA_LINKINFO and below).

const ALIGN = 4;
const pad = (n: number): number => (n + ALIGN - 1) & ~(ALIGN - 1);

export type NlaValue = Buffer | Nla[];
export interface Nla { type: number; value: NlaValue }

export function encode(attrs: Nla[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = Buffer.isBuffer(a.value) ? a.value : encode(a.value);
    const header = Buffer.alloc(4);
    header.writeUInt16LE(4 + payload.length, 0);
    header.writeUInt16LE(a.type, 2);
    parts.push(header, payload, Buffer.alloc(pad(payload.length) - payload.length));
  }
  return Buffer.concat(parts);
}

/**
 * Decodes one level of attributes into a map type → payload (last one wins); with `only`,
 * just those types (a link carries ~50 attributes, a caller wants a few: no Buffer for the rest).
 */
export function decode(buf: Buffer, only?: readonly number[]): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (!only || only.includes(type)) out.set(type, buf.subarray(off + 4, off + len));
    off += pad(len);
  }
  return out;
}

export const u8 = (v: number): Buffer => Buffer.from([v & 0xff]);
export const u16be = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; };
export const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
export const str = (s: string): Buffer => Buffer.from(s + '\0');
export const cstr = (b: Buffer): string => b.toString('utf8').replace(/\0.*$/s, '');
