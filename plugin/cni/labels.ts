// Kubernetes label syntax (keys and values) and label selectors: `a=b`, `a==b`, `a!=b`,
// `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated (AND). The empty selector selects
// everything. Parsing never throws anything but LabelError with a message naming the spot.

export type Labels = Record<string, string>;

export class LabelError extends Error {}

const NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function checkLabelKey(key: string, where: string): string {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))) {
    throw new LabelError(`${where}: label key "${key.slice(0, 80)}" has an invalid prefix (a DNS subdomain such as example.com)`);
  }
  if (!NAME_RE.test(name)) {
    throw new LabelError(`${where}: label key "${key.slice(0, 80)}" is invalid (at most 63 characters: letters, digits, "-", "_", ".", starting and ending with a letter or digit)`);
  }
  return key;
}

export function checkLabelValue(value: string, where: string): string {
  if (value !== '' && !NAME_RE.test(value)) {
    throw new LabelError(`${where}: label value "${value.slice(0, 80)}" is invalid (empty, or at most 63 characters: letters, digits, "-", "_", ".", starting and ending with a letter or digit)`);
  }
  return value;
}

export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export interface Selector { text: string; requirements: Requirement[] }

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string, where: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0 || depth > 1) throw new LabelError(`${where}: unbalanced parentheses in "${s}"`);
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new LabelError(`${where}: unbalanced parentheses in "${s}"`);
  parts.push(cur);
  return parts;
}

function parseRequirement(raw: string, where: string): Requirement {
  const r = raw.trim();
  if (r === '') throw new LabelError(`${where}: empty requirement (stray comma?)`);
  let m = /^(\S+?)\s*(==|=|!=)\s*(\S*)$/.exec(r);
  if (m) {
    const key = checkLabelKey(m[1], where);
    const value = checkLabelValue(m[3], where);
    return { key, op: m[2] === '!=' ? 'notin' : 'in', values: [value] };
  }
  m = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(r);
  if (m) {
    const key = checkLabelKey(m[1], where);
    const values = m[3].split(',').map((v) => checkLabelValue(v.trim(), where));
    if (values.length === 0 || (values.length === 1 && values[0] === '' && m[3].trim() === '')) {
      throw new LabelError(`${where}: "${r}" needs at least one value in the parentheses`);
    }
    return { key, op: m[2] as 'in' | 'notin', values };
  }
  m = /^(!?)\s*([^\s=!(),]+)$/.exec(r);
  if (m) return { key: checkLabelKey(m[2], where), op: m[1] ? 'notexists' : 'exists' };
  throw new LabelError(`${where}: cannot parse "${r.slice(0, 80)}" (use key=value, key!=value, key in (a,b), key notin (a), key or !key)`);
}

export function parseSelector(text: string, where = 'podSelector'): Selector {
  if (typeof text !== 'string') throw new LabelError(`${where} must be a string`);
  if (text.length > 1024) throw new LabelError(`${where} is longer than 1024 characters`);
  if (text.trim() === '') return { text: '', requirements: [] };
  return { text, requirements: splitTop(text, where).map((p) => parseRequirement(p, where)) };
}

export function matches(sel: Selector, labels: Labels): boolean {
  return sel.requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists': return has;
      case 'notexists': return !has;
      case 'in': return has && r.values.includes(labels[r.key]);
      case 'notin': return !has || !r.values.includes(labels[r.key]);
    }
  });
}

/** `matchLabels`/`matchExpressions` form of a selector (Kubernetes LabelSelector). */
export function toLabelSelector(sel: Selector): { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] } {
  const matchLabels: Labels = {};
  const matchExpressions: { key: string; operator: string; values?: string[] }[] = [];
  for (const r of sel.requirements) {
    if (r.op === 'in' && r.values.length === 1 && !(r.key in matchLabels)) matchLabels[r.key] = r.values[0];
    else if (r.op === 'in') matchExpressions.push({ key: r.key, operator: 'In', values: r.values });
    else if (r.op === 'notin') matchExpressions.push({ key: r.key, operator: 'NotIn', values: r.values });
    else matchExpressions.push({ key: r.key, operator: r.op === 'exists' ? 'Exists' : 'DoesNotExist' });
  }
  return { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions.length ? { matchExpressions } : {}) };
}
