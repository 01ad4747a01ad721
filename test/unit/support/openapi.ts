// A small, strict checker for Kubernetes structural (OpenAPI v3) schemas as found in CRDs: every
// schema keyword it meets must be one it implements (an unknown keyword is an error, never
// silently skipped), unknown object fields are errors (like `kubectl apply --validate=strict`),
// and `x-kubernetes-list-type: map` keys must be unique.
export type Schema = Record<string, unknown>;

const KNOWN = new Set(['type', 'properties', 'required', 'items', 'enum', 'pattern', 'minimum', 'maximum', 'minLength', 'maxLength',
  'maxItems', 'minItems', 'format', 'additionalProperties', 'description', 'default', 'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-map-type']);

const FORMATS: Record<string, (v: unknown) => boolean> = {
  int32: (v) => typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31,
  int64: (v) => typeof v === 'number' && Number.isSafeInteger(v),
  ipv4: (v) => typeof v === 'string' && /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(v),
  cidr: (v) => typeof v === 'string' && /^[0-9a-fA-F.:]+\/\d{1,3}$/.test(v),
  'date-time': (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)),
};

export function validate(value: unknown, schema: Schema, at = '$'): string[] {
  const errs: string[] = [];
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) errs.push(`${at}: schema keyword ${k} is not implemented by this checker`);
  const t = schema.type as string | undefined;
  const isObj = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (t === 'object' && !isObj) return [...errs, `${at}: expected object`];
  if (t === 'array' && !Array.isArray(value)) return [...errs, `${at}: expected array`];
  if (t === 'string' && typeof value !== 'string') return [...errs, `${at}: expected string`];
  if (t === 'integer' && !Number.isInteger(value)) return [...errs, `${at}: expected integer`];
  if (t === 'boolean' && typeof value !== 'boolean') return [...errs, `${at}: expected boolean`];
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errs.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern as string).test(value)) errs.push(`${at}: "${value}" does not match pattern`);
    if (schema.maxLength !== undefined && value.length > (schema.maxLength as number)) errs.push(`${at}: longer than ${schema.maxLength}`);
    if (schema.minLength !== undefined && value.length < (schema.minLength as number)) errs.push(`${at}: shorter than ${schema.minLength}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < (schema.minimum as number)) errs.push(`${at}: ${value} < ${schema.minimum}`);
    if (schema.maximum !== undefined && value > (schema.maximum as number)) errs.push(`${at}: ${value} > ${schema.maximum}`);
  }
  if (schema.format !== undefined) {
    const f = FORMATS[schema.format as string];
    if (!f) errs.push(`${at}: format ${String(schema.format)} is not implemented by this checker`);
    else if (!f(value)) errs.push(`${at}: ${JSON.stringify(value)} is not a valid ${schema.format}`);
  }
  if (isObj) {
    const o = value as Record<string, unknown>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in o)) errs.push(`${at}: missing required field ${r}`);
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    const extra = schema.additionalProperties as Schema | boolean | undefined;
    for (const [k, v] of Object.entries(o)) {
      if (props[k]) errs.push(...validate(v, props[k], `${at}.${k}`));
      else if (typeof extra === 'object') errs.push(...validate(v, extra, `${at}.${k}`));
      else if (!schema['x-kubernetes-preserve-unknown-fields'] && (schema.properties || extra === false)) errs.push(`${at}: unknown field ${k}`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > (schema.maxItems as number)) errs.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.minItems !== undefined && value.length < (schema.minItems as number)) errs.push(`${at}: fewer than ${schema.minItems} items`);
    value.forEach((v, i) => errs.push(...validate(v, schema.items as Schema, `${at}[${i}]`)));
    if (schema['x-kubernetes-list-type'] === 'map') {
      const keys = schema['x-kubernetes-list-map-keys'] as string[];
      const seen = new Set<string>();
      for (const v of value as Record<string, unknown>[]) {
        const k = JSON.stringify(keys.map((x) => v[x]));
        if (seen.has(k)) errs.push(`${at}: duplicate list-map key ${k}`);
        seen.add(k);
      }
    }
    if (schema['x-kubernetes-list-type'] === 'set' && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) errs.push(`${at}: duplicate set items`);
  }
  return errs;
}

/** The openAPIV3Schema of `version` in a CRD object; metadata gets the name rules of ObjectMeta. */
export function crdSchema(crd: { spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } }, version: string): Schema {
  const v = crd.spec.versions.find((x) => x.name === version);
  if (!v) throw new Error(`CRD has no version ${version}`);
  return v.schema.openAPIV3Schema;
}

/** ObjectMeta fields a rendered object may carry (name: DNS subdomain, labels/annotations maps). */
export function checkMeta(meta: Record<string, unknown>): string[] {
  const errs: string[] = [];
  for (const k of Object.keys(meta)) if (!['name', 'labels', 'annotations'].includes(k)) errs.push(`metadata: unexpected ${k}`);
  const name = meta.name;
  if (typeof name !== 'string' || name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) errs.push(`metadata.name ${JSON.stringify(name)} is not a DNS subdomain`);
  for (const m of ['labels', 'annotations']) {
    const map = meta[m] as Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(map ?? {})) if (typeof v !== 'string') errs.push(`metadata.${m}.${k} is not a string`);
  }
  for (const [k, v] of Object.entries((meta.labels as Record<string, string> | undefined) ?? {})) {
    if (v.length > 63 || !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)) errs.push(`metadata.labels.${k} value is not a label value`);
  }
  return errs;
}
