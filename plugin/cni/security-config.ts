// `"security": {"mode": "off" | "enforce", "vrrp": [{"vrid": 51, "vips": [...]}], "allowedMacs": [...],
// "allowedAddresses": [...]}` of a network, a static leg or a selection element (the most specific
// one replaces the others as a whole). Parsed here once for all three places.
import type { GuardConf } from '../../overlay/leg-guard';
import { invalidConfig } from './errors';
import { checkUnicast, cidr, int, obj, onlyKeys, parseMac, str } from './validate';


export interface SecurityConf extends GuardConf { mode: 'off' | 'enforce' }

// Bounds that keep the guard within classic BPF's 4096 instructions (leg-guard.ts checks the sum).
export const MAX_VRRP = 16;
export const MAX_VIPS = 16;
export const MAX_ALLOWED_MACS = 32;
export const MAX_ALLOWED_ADDRESSES = 64;

function list(v: unknown, where: string, max: number): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidConfig(`${where} must be a list`);
  if (v.length > max) throw invalidConfig(`${where} has ${v.length} entries; at most ${max}`);
  return v;
}

export function parseSecurity(v: unknown, where: string): SecurityConf {
  const s = obj(v, where);
  onlyKeys(s, where, ['mode', 'vrrp', 'allowedMacs', 'allowedAddresses']);
  const mode = str(s.mode, `${where}.mode`);
  if (mode !== 'off' && mode !== 'enforce') throw invalidConfig(`${where}.mode must be "off" or "enforce", got "${mode.slice(0, 30)}"`);
  const vrrp = list(s.vrrp, `${where}.vrrp`, MAX_VRRP).map((raw, i) => {
    const w = `${where}.vrrp[${i}]`;
    const r = obj(raw, w);
    onlyKeys(r, w, ['vrid', 'vips']);
    const vrid = int(r.vrid, `${w}.vrid`, 1, 255);
    const vips = list(r.vips, `${w}.vips`, MAX_VIPS).map((ip, j) => checkUnicast(str(ip, `${w}.vips[${j}]`), `${w}.vips[${j}]`, { linkLocal: true }));
    if (vips.length === 0) throw invalidConfig(`${w}.vips must list the virtual router's addresses (its virtual MAC depends on their family)`);
    return { vrid, vips };
  });
  const allowedMacs = list(s.allowedMacs, `${where}.allowedMacs`, MAX_ALLOWED_MACS).map((m, i) => parseMac(m, `${where}.allowedMacs[${i}]`));
  const allowedAddresses = list(s.allowedAddresses, `${where}.allowedAddresses`, MAX_ALLOWED_ADDRESSES).map((a, i) => {
    const w = `${where}.allowedAddresses[${i}]`;
    const text = str(a, w);
    return text.includes('/') ? cidr(text, w) : checkUnicast(text, w, { linkLocal: true });
  });
  return { mode, vrrp, allowedMacs, allowedAddresses };
}

/** The guard a leg gets: the most specific `security` wins; undefined when it is off. */
export function effectiveGuard(...specific: (SecurityConf | undefined)[]): GuardConf | undefined {
  const s = specific.find((x) => x !== undefined);
  if (!s || s.mode === 'off') return undefined;
  const { mode: _m, ...g } = s;
  return g;
}
