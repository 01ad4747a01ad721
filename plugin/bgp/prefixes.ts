// Prefixes of the guard: parsing with clear errors, containment, and the address family.
import * as ipaddr from 'ipaddr.js';

export interface Prefix { text: string; addr: ipaddr.IPv4 | ipaddr.IPv6; len: number; v6: boolean }

export class PrefixError extends Error {}

/** "192.0.2.0/24" → Prefix; host bits must be zero; a bare address is an error unless hostOk. */
export function parsePrefix(s: unknown, where: string, hostOk = false): Prefix {
  if (typeof s !== 'string' || s === '') throw new PrefixError(`${where} must be a prefix such as 192.0.2.0/24, got ${JSON.stringify(s)}`);
  let text = s.trim();
  if (hostOk && !text.includes('/') && ipaddr.isValid(text)) text = `${text}/${ipaddr.parse(text).kind() === 'ipv4' ? 32 : 128}`;
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(text);
  } catch {
    throw new PrefixError(`${where} "${text.slice(0, 60)}" is not a prefix (address/length, e.g. 192.0.2.0/24)`);
  }
  const [addr, len] = parsed;
  const v6 = addr.kind() === 'ipv6';
  const net = v6 ? ipaddr.IPv6.networkAddressFromCIDR(text) : ipaddr.IPv4.networkAddressFromCIDR(text);
  if (net.toString() !== addr.toString()) {
    throw new PrefixError(`${where} "${text}" has host bits set; did you mean ${net.toString()}/${len}?`);
  }
  return { text: `${addr.toString()}/${len}`, addr, len, v6 };
}

/** True when `inner` lies within `outer` (equal counts). */
export function within(inner: Prefix, outer: Prefix): boolean {
  if (inner.v6 !== outer.v6 || inner.len < outer.len) return false;
  return inner.addr.match(outer.addr, outer.len);
}

export const maxLen = (p: Prefix): number => (p.v6 ? 128 : 32);

/** Sorted, de-duplicated, most-general first. */
export function uniquePrefixes(ps: Prefix[]): Prefix[] {
  const seen = new Map<string, Prefix>();
  for (const p of ps) seen.set(p.text, p);
  return [...seen.values()].sort((a, b) => Number(a.v6) - Number(b.v6) || a.len - b.len || a.text.localeCompare(b.text));
}

/** uniquePrefixes without those inside another of the list (a node's /24 inside its pool's /16). */
export function outermost(ps: Prefix[]): Prefix[] {
  const out: Prefix[] = [];
  for (const p of uniquePrefixes(ps)) if (!out.some((o) => within(p, o))) out.push(p);
  return out;
}
