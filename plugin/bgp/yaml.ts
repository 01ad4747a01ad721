// A minimal YAML emitter for plain JSON data (objects, arrays, strings, numbers, booleans, null):
// enough to print Kubernetes manifests. Strings are always double-quoted JSON strings, which YAML
// reads back unchanged; keys are quoted unless they are plain identifiers.
type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

const key = (k: string): string => (/^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(k) ? k : JSON.stringify(k));
const scalar = (v: Plain): string => (typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : String(v));
const isEmpty = (v: Plain): boolean => (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && v !== null && Object.keys(v).length === 0);
const inline = (v: Plain): string => (Array.isArray(v) ? '[]' : typeof v === 'object' && v !== null ? '{}' : scalar(v));

function emit(v: Plain, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item === 'object' && item !== null && !isEmpty(item)) {
        const sub: string[] = [];
        emit(item, `${indent}  `, sub);
        out.push(`${indent}- ${sub[0].slice(indent.length + 2)}`, ...sub.slice(1));
      } else out.push(`${indent}- ${inline(item)}`);
    }
    return;
  }
  for (const [k, val] of Object.entries(v as Record<string, Plain>)) {
    if (typeof val === 'object' && val !== null && !isEmpty(val)) {
      out.push(`${indent}${key(k)}:`);
      emit(val, Array.isArray(val) ? indent : `${indent}  `, out);
    } else out.push(`${indent}${key(k)}: ${inline(val)}`);
  }
}

/** One YAML document per object, separated by `---`. */
export function toYaml(docs: object[]): string {
  return docs.map((d) => {
    const out: string[] = [];
    emit(JSON.parse(JSON.stringify(d)) as Plain, '', out);
    return `---\n${out.join('\n')}\n`;
  }).join('');
}
