// Field checks shared by the config parsers: each failure is a CNI error naming the field.
import { CniError, Code, invalidConfig } from './errors';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function obj(v: unknown, where: string): Obj {
  if (!isObj(v)) throw invalidConfig(`${where} must be an object`);
  return v;
}

/** A typo in podlegs' own objects is refused (code 2), not silently ignored. */
export function onlyKeys(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new CniError(Code.UnsupportedField, `${where}.${k} is not a known field`, `known fields: ${allowed.join(', ')}`);
  }
}

export function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw invalidConfig(`${where} must be a non-empty string`);
  return v;
}

export function int(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidConfig(`${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function absPath(v: unknown, where: string): string {
  const s = str(v, where);
  if (!s.startsWith('/') || s.includes('\0')) throw invalidConfig(`${where} must be an absolute path`);
  return s;
}
