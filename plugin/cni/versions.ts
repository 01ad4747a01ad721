// Spec versions podlegs speaks, and conversion of results between them.
// 0.3.x/0.4.0 results carry "version" in each IP; 1.x results do not, and
// 1.1.0 may carry an interface "mtu". Everything else passes through untouched.
import { CniError, Code } from './errors';

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

/** Reads a result (e.g. prevResult) of any supported version into the 1.x shape. */
export function toInternal(r: unknown, what: string): Result {
  if (r === undefined || r === null) return {};
  if (typeof r !== 'object' || Array.isArray(r)) throw new CniError(Code.DecodeFailure, `${what} is not an object`);
  const res = structuredClone(r) as Result;
  for (const field of ['interfaces', 'ips', 'routes'] as const) {
    if (res[field] !== undefined && !Array.isArray(res[field])) throw new CniError(Code.DecodeFailure, `${what}.${field} is not a list`);
  }
  for (const ip of res.ips ?? []) {
    if (typeof ip?.address !== 'string') throw new CniError(Code.DecodeFailure, `${what}.ips has an entry without address`);
    delete ip.version;
  }
  for (const i of res.interfaces ?? []) {
    if (typeof i?.name !== 'string') throw new CniError(Code.DecodeFailure, `${what}.interfaces has an entry without name`);
  }
  delete res.cniVersion;
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
