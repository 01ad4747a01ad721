// Renders the chained conflist [<Cilium's plugins as found>, podlegs] from the
// conflist Cilium wrote. Cilium's entries are copied as parsed, unchanged; the
// podlegs entry is validated with the plugin's own loadConf before anything is
// written, so a node never gets a conflist the plugin would refuse.
import { loadConf } from '../cni/config';
import { CniError } from '../cni/errors';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** A CNI network configuration list as written to /etc/cni/net.d. */
export interface Conflist extends JsonObject {
  cniVersion: string;
  name: string;
  plugins: JsonObject[];
}

export interface RenderOptions {
  /** The podlegs plugin entry (fields of DESIGN.md "Plugin configuration"); default {"type":"podlegs"}. */
  entry?: JsonObject;
  /** Network name of the rendered list; default: the name in Cilium's conflist (keeps libcni cache keys). */
  name?: string;
}

export const DEFAULT_ENTRY: JsonObject = { type: 'podlegs' };

/** origin 'base': the file we chain after is unusable; 'input': our own entry, name or options. */
export class ConfError extends Error {
  constructor(msg: string, readonly origin: 'base' | 'input' = 'base') {
    super(msg);
    this.name = 'ConfError';
  }
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses JSON text naming the source in every error. */
export function parseJsonObject(text: string, source: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfError(`${source} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new ConfError(`${source} must hold a JSON object`);
  return v;
}

/**
 * Reads the base network from Cilium's file: a conflist ({plugins: [...]}) or a
 * single-plugin .conf ({type: ...}), returned as top-level fields + plugin list.
 */
export function parseBaseNetwork(text: string, source: string): { top: JsonObject; plugins: JsonObject[] } {
  const doc = parseJsonObject(text, source);
  let plugins: JsonObject[];
  const top: JsonObject = {};
  if (doc.plugins !== undefined) {
    if (!Array.isArray(doc.plugins) || doc.plugins.length === 0) throw new ConfError(`${source}: "plugins" must be a non-empty list`);
    plugins = doc.plugins.map((p, i) => {
      if (!isObject(p) || typeof p.type !== 'string' || p.type === '') throw new ConfError(`${source}: plugins[${i}] has no "type"`);
      return p;
    });
    for (const [k, v] of Object.entries(doc)) if (k !== 'plugins') top[k] = v;
  } else if (typeof doc.type === 'string' && doc.type !== '') {
    // A single-plugin .conf: its own fields are the plugin entry.
    const entry: JsonObject = {};
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'cniVersion' || k === 'name') top[k] = v;
      else entry[k] = v;
    }
    plugins = [entry];
  } else {
    throw new ConfError(`${source} is neither a conflist ("plugins") nor a network configuration ("type")`);
  }
  if (typeof top.cniVersion !== 'string' || top.cniVersion === '') throw new ConfError(`${source} has no "cniVersion"`);
  if (typeof top.name !== 'string' || top.name === '') throw new ConfError(`${source} has no "name"`);
  return { top, plugins };
}

/** The podlegs entry from a file: a bare entry, or the podlegs entry of a conflist. */
export function parseEntry(text: string, source: string): JsonObject {
  let doc: JsonObject;
  try {
    doc = parseJsonObject(text, source);
  } catch (e) {
    throw new ConfError((e as Error).message, 'input');
  }
  if (Array.isArray(doc.plugins)) {
    const ours = doc.plugins.filter((p): p is JsonObject => isObject(p) && p.type === 'podlegs');
    if (ours.length !== 1) throw new ConfError(`${source} is a conflist with ${ours.length} podlegs entries; give exactly one`, 'input');
    return ours[0];
  }
  return doc;
}

function checkEntry(entry: JsonObject, cniVersion: string, name: string): JsonObject {
  if (entry.type === undefined) entry = { type: 'podlegs', ...entry };
  if (entry.type !== 'podlegs') throw new ConfError(`the podlegs entry must have "type": "podlegs", got ${JSON.stringify(entry.type)}`, 'input');
  for (const k of ['cniVersion', 'name', 'prevResult']) {
    if (entry[k] !== undefined) throw new ConfError(`the podlegs entry must not carry "${k}": the runtime sets it from the list`, 'input');
  }
  try {
    loadConf(JSON.stringify({ cniVersion, name, ...entry }));
  } catch (e) {
    if (e instanceof CniError) throw new ConfError(`the podlegs entry is invalid for cniVersion ${cniVersion}: ${e.message}${e.details ? ` (${e.details})` : ''}`, 'input');
    throw e;
  }
  return entry;
}

/** Builds the chained conflist: Cilium's top-level fields and plugins as found, podlegs last. */
export function renderChained(ciliumText: string, ciliumSource: string, opts: RenderOptions = {}): Conflist {
  const { top, plugins } = parseBaseNetwork(ciliumText, ciliumSource);
  // An earlier podlegs entry (someone pointed us at our own output) is not Cilium's: drop it.
  const base = plugins.filter((p) => p.type !== 'podlegs');
  if (base.length === 0) throw new ConfError(`${ciliumSource} has no plugin besides podlegs to chain after`);
  const cniVersion = top.cniVersion as string;
  const name = opts.name ?? (top.name as string);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new ConfError(`network name "${name}" may hold only letters, digits, "_", "." and "-"`, 'input');
  const entry = checkEntry({ ...(opts.entry ?? DEFAULT_ENTRY) }, cniVersion, name);
  const out: JsonObject = { cniVersion, name };
  for (const [k, v] of Object.entries(top)) if (!(k in out)) out[k] = v;
  out.plugins = [...base, entry];
  return out as Conflist;
}

/** The bytes written to disk: two-space JSON with a trailing newline. */
export function formatConflist(c: Conflist): string {
  return `${JSON.stringify(c, null, 2)}\n`;
}
