// Spec versions podlegs speaks, and conversion of results between them.
// 0.3.x/0.4.0 results carry "version" in each IP; 1.x results do not, and
// 1.1.0 may carry an interface "mtu". Everything else passes through untouched.
import { CniError, Code } from './errors';
import { cidr, int, ipAddress, obj } from './validate';

const DECODE = Code.DecodeFailure;

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export function checkVersion(v: unknown): CniVersion {
  if (typeof v !== 'string') throw new CniError(Code.InvalidConfig, 'cniVersion is missing or not a string');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(Code.IncompatibleVersion, `cniVersion ${v} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return v as CniVersion;
}

const num = (v: string): number[] => v.split('.').map(Number);
export function atLeast(v: CniVersion, min: string): boolean {
  const [a, b] = [num(v), num(min)];
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

export interface ResultInterface { name: string; mac?: string; mtu?: number; sandbox?: string; [k: string]: unknown }
export interface ResultIp { address: string; gateway?: string; interface?: number; version?: string; [k: string]: unknown }
export interface ResultRoute { dst: string; gw?: string; [k: string]: unknown }
export interface Result {
  cniVersion?: string;
  interfaces?: ResultInterface[];
  ips?: ResultIp[];
  routes?: ResultRoute[];
  dns?: Record<string, unknown>;
  [k: string]: unknown;
}

/**
 * Reads a result (prevResult, an IPAM result) of any supported version into the 1.x shape,
 * refusing what libcni's types cannot decode (code 6): an address or route that is not a CIDR,
 * a gateway that is not an IP, an interface index that is not an integer. Nothing malformed is
 * passed on to the runtime.
 */
export function toInternal(r: unknown, what: string): Result {
  if (r === undefined || r === null) return {};
  const res = structuredClone(obj(r, what, DECODE)) as Result;
  for (const field of ['interfaces', 'ips', 'routes'] as const) {
    if (res[field] !== undefined && !Array.isArray(res[field])) throw new CniError(DECODE, `${what}.${field} is not a list`);
  }
  (res.interfaces ?? []).forEach((i, n) => {
    if (typeof obj(i, `${what}.interfaces[${n}]`, DECODE).name !== 'string') throw new CniError(DECODE, `${what}.interfaces has an entry without name`);
  });
  (res.ips ?? []).forEach((ip, n) => {
    const where = `${what}.ips[${n}]`;
    if (obj(ip, where, DECODE).address === undefined) throw new CniError(DECODE, `${what}.ips has an entry without address`);
    cidr(ip.address, `${where}.address`, DECODE);
    if (ip.gateway !== undefined) ipAddress(ip.gateway, `${where}.gateway`, DECODE);
    if (ip.interface !== undefined) int(ip.interface, `${where}.interface`, 0, Number.MAX_SAFE_INTEGER, DECODE);
    delete ip.version;
  });
  (res.routes ?? []).forEach((rt, n) => {
    const where = `${what}.routes[${n}]`;
    cidr(obj(rt, where, DECODE).dst, `${where}.dst`, DECODE);
    if (rt.gw !== undefined) ipAddress(rt.gw, `${where}.gw`, DECODE);
  });
  delete res.cniVersion;
  return res;
}

/**
 * The prevResult of a chained call: a result whose IPs point at its own interfaces. An index
 * past the list is refused (6) like a value that does not decode: the reference plugins refuse
 * it too when they use it, and a runtime would be handed a result that points nowhere.
 */
export function parsePrevResult(r: unknown): Result | undefined {
  if (r === undefined || r === null) return undefined;
  const res = toInternal(r, 'prevResult');
  const count = res.interfaces?.length ?? 0;
  (res.ips ?? []).forEach((ip, n) => {
    if (ip.interface !== undefined && ip.interface >= count) {
      throw new CniError(DECODE, `prevResult.ips[${n}].interface ${ip.interface} is not an index into prevResult.interfaces (${count} entries)`);
    }
  });
  return res;
}

/** Renders an internal result in the shape of the requested version. */
export function fromInternal(r: Result, v: CniVersion): Result {
  const out = structuredClone(r);
  const legacy = !atLeast(v, '1.0.0');
  for (const ip of out.ips ?? []) {
    if (legacy) ip.version = ip.address.includes(':') ? '6' : '4';
    else delete ip.version;
  }
  if (!atLeast(v, '1.1.0')) for (const i of out.interfaces ?? []) delete i.mtu;
  return { cniVersion: v, ...out, dns: out.dns ?? {} };
}
