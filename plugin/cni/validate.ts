// Field checks shared by the config parsers: each failure is a CNI error naming the field.
// One check per kind of value; `code` lets a caller report the same check as another error
// (prevResult comes from the runtime: its problems are decoding failures, 6, not config ones).
import * as ipaddr from 'ipaddr.js';
import { CniCode, CniError, Code, invalidConfig } from './errors';
import { macProblem } from '../../overlay/values';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const fail = (code: CniCode, msg: string): CniError => new CniError(code, msg);

export function obj(v: unknown, where: string, code: CniCode = Code.InvalidConfig): Obj {
  if (!isObj(v)) throw fail(code, `${where} must be an object`);
  return v;
}

/** A typo in podlegs' own objects is refused (code 2), not silently ignored. */
export function onlyKeys(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new CniError(Code.UnsupportedField, `${where}.${k} is not a known field`, `known fields: ${allowed.join(', ')}`);
  }
}

export function str(v: unknown, where: string, code: CniCode = Code.InvalidConfig): string {
  if (typeof v !== 'string' || v === '') throw fail(code, `${where} must be a non-empty string`);
  return v;
}

export function int(v: unknown, where: string, min: number, max: number, code: CniCode = Code.InvalidConfig): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw fail(code, `${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function absPath(v: unknown, where: string): string {
  const s = str(v, where);
  if (!s.startsWith('/') || s.includes('\0')) throw fail(Code.InvalidConfig, `${where} must be an absolute path`);
  return s;
}

/**
 * An IP address as Go's net.ParseIP (libcni) reads it: dotted quad without leading zeros, or
 * IPv6 without a zone. ipaddr.js alone also takes "10.1", "0x0a.0.0.1" and "3221225995".
 */
export function isIpAddress(s: string): boolean {
  if (!s.includes(':')) return ipaddr.IPv4.isValidFourPartDecimal(s);
  if (s.includes('%') || !ipaddr.IPv6.isValid(s)) return false;
  const tail = s.slice(s.lastIndexOf(':') + 1);
  return !tail.includes('.') || ipaddr.IPv4.isValidFourPartDecimal(tail);
}

export function ipAddress(v: unknown, where: string, code: CniCode = Code.InvalidConfig): string {
  const s = str(v, where, code);
  if (!isIpAddress(s)) throw fail(code, `${where} "${s.slice(0, 60)}" is not an IP address`);
  return s;
}

/** An address with prefix length, as net.ParseCIDR reads it (e.g. 192.0.2.10/24, 2001:db8::1/64). */
export function cidr(v: unknown, where: string, code: CniCode = Code.InvalidConfig): string {
  const s = str(v, where, code);
  const slash = s.lastIndexOf('/');
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const max = addr.includes(':') ? 128 : 32;
  if (slash < 0 || !isIpAddress(addr) || !/^(0|[1-9][0-9]{0,2})$/.test(len) || Number(len) > max) {
    throw fail(code, `${where} "${s.slice(0, 60)}" is not an address with prefix length (e.g. 192.0.2.10/24)`);
  }
  return s;
}

/** A network name as the CNI spec (libcni's ValidateNetworkName) has it. */
const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Not in the spec: keeps registry entries (4 KiB at most) and messages bounded; a NAD name has at most 253. */
export const MAX_NETWORK_NAME = 253;

export function networkName(v: unknown, where: string): string {
  const s = str(v, where);
  if (!NETWORK_NAME_RE.test(s) || s.length > MAX_NETWORK_NAME) {
    throw fail(Code.InvalidConfig, `${where} "${s.slice(0, 70)}" is not a network name: a letter or digit, then letters, digits, "_", "." or "-" (at most ${MAX_NETWORK_NAME})`);
  }
  return s;
}

/** A unicast IP address (a VTEP; with linkLocal also fe80::/10 and 169.254/16, e.g. a VRRPv3 VIP). */
export function checkUnicast(ip: string, where: string, opts: { linkLocal?: boolean } = {}): string {
  if (!isIpAddress(ip)) throw invalidConfig(`${where} "${ip.slice(0, 60)}" is not an IP address`);
  const range = ipaddr.process(ip).range();
  if (['unspecified', 'multicast', 'broadcast', 'loopback', ...(opts.linkLocal ? [] : ['linkLocal'])].includes(range)) {
    throw invalidConfig(`${where} "${ip}" is not a unicast address (${range})`);
  }
  return ip;
}

/** A station MAC, lower-cased. */
export function parseMac(v: unknown, where: string): string {
  const s = str(v, where).toLowerCase();
  const bad = macProblem(s);
  if (bad) throw invalidConfig(`${where} ${bad}`);
  return s;
}
