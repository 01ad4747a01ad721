// One rule per value kind that several parsers read (config files, annotations, another
// node's registry entries, the agent's settings). Each returns why a value is unusable (a
// phrase to follow the field's name) or undefined; callers wrap it in their own error type.
import * as ipaddr from 'ipaddr.js';

/** A station MAC for a leg or an FDB entry: aa:bb:cc:dd:ee:ff (lower case), unicast, not all zeros (the flood entry's). */
export function macProblem(mac: string): string | undefined {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) return `"${mac.slice(0, 40)}" is not a MAC address (aa:bb:cc:dd:ee:ff)`;
  if (parseInt(mac.slice(0, 2), 16) & 1) return `${mac} is a multicast MAC, not a unicast one`;
  if (mac === '00:00:00:00:00:00') return `${mac} is the all-zero MAC, not a unicast one`;
  return undefined;
}

export const MAX_ASN = 4294967294;
/**
 * An AS number a BGP speaker can use: 1..4294967294 (4294967295 is reserved), never AS_TRANS
 * (23456, RFC 6793) or 65535 (reserved, RFC 7300).
 */
export function asnProblem(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_ASN || v === 23456 || v === 65535) {
    return `must be an AS number from 1 to ${MAX_ASN} (not 23456 or 65535), got ${JSON.stringify(v)?.slice(0, 30)}`;
  }
  return undefined;
}

/** An AS number written as text (a label or an annotation): decimal digits only. */
export const asnFromText = (s: string): number => (/^\d{1,10}$/.test(s.trim()) ? Number(s.trim()) : NaN);

/**
 * Why ip cannot be a VTEP (undefined when it can): VXLAN needs a unicast IPv4/IPv6 address.
 * IPv4 240.0.0.0/4 (class E) is "reserved" to ipaddr.js like TEST-NET, so it is checked apart.
 */
export function vtepProblem(ip: string): string | undefined {
  if (!ipaddr.isValid(ip)) return `vtep ${JSON.stringify(ip).slice(0, 60)} is not an IP address`;
  const a = ipaddr.process(ip);
  const range = a.range();
  if (['unspecified', 'multicast', 'broadcast', 'loopback', 'linkLocal'].includes(range)) return `vtep ${ip} is not unicast (${range})`;
  if (a.kind() === 'ipv4' && (a as ipaddr.IPv4).octets[0] >= 240) return `vtep ${ip} is not unicast (class E)`;
  return undefined;
}

/** "host:port" or "[v6]:port" split into its parts, or why it is not one. */
export function parseHostPort(addr: string): { host: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) return `"${addr.slice(0, 80)}" is not host:port (e.g. 127.0.0.1:9750 or [::1]:9750)`;
  if (m[1] !== undefined && !ipaddr.IPv6.isValid(m[1])) return `host "${m[1]}" is not an IPv6 address`;
  if (m[2] !== undefined && !/^[A-Za-z0-9.-]+$/.test(m[2])) return `host "${m[2].slice(0, 60)}" is not a host name or address`;
  return { host: m[1] ?? m[2], port };
}
