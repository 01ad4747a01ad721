// The pod and service CIDRs of a Kubernetes cluster, for bgp-sync's deny list when the config
// leaves them out: a pod must never announce them, and the cluster knows them.
//
//   pod      Node spec.podCIDRs (or spec.podCIDR)              /api/v1/nodes
//            CiliumNode spec.ipam.podCIDRs                     /apis/cilium.io/v2/ciliumnodes
//            CiliumPodIPPool spec.ipv4.cidrs, spec.ipv6.cidrs  /apis/cilium.io/v2alpha1/ciliumpodippools
//   service  ServiceCIDR spec.cidrs                            /apis/networking.k8s.io/v1/servicecidrs,
//                                                              after a 404 .../v1beta1/servicecidrs
//
// A 404 means the cluster has no such resource (no Cilium CRDs, Kubernetes before 1.31): the source
// is not available, which is not an error. Any other failure is: the guard must not be built from
// half of what the cluster would have said.
import type { KubeClient } from '../../overlay/kube/http';
import { ApiError } from '../../overlay/kube/http';
import { outermost, parsePrefix, Prefix, PrefixError } from './prefixes';

export type CidrKind = 'pod' | 'service';
type Obj = Record<string, unknown>;
type Lister = Pick<KubeClient, 'request'>;

interface Source { kind: CidrKind; what: string; paths: string[]; cidrsOf(o: Obj): unknown[] }

const at = (o: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Obj)[k] : undefined), o);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const SOURCES: Source[] = [
  { kind: 'pod', what: 'Node spec.podCIDRs', paths: ['/api/v1/nodes'],
    cidrsOf: (o) => (Array.isArray(at(o, 'spec', 'podCIDRs')) ? list(at(o, 'spec', 'podCIDRs')) : [at(o, 'spec', 'podCIDR')].filter((x) => x !== undefined && x !== '')) },
  { kind: 'pod', what: 'CiliumNode spec.ipam.podCIDRs', paths: ['/apis/cilium.io/v2/ciliumnodes'], cidrsOf: (o) => list(at(o, 'spec', 'ipam', 'podCIDRs')) },
  { kind: 'pod', what: 'CiliumPodIPPool spec.ipv4.cidrs/spec.ipv6.cidrs', paths: ['/apis/cilium.io/v2alpha1/ciliumpodippools'],
    cidrsOf: (o) => [...list(at(o, 'spec', 'ipv4', 'cidrs')), ...list(at(o, 'spec', 'ipv6', 'cidrs'))] },
  { kind: 'service', what: 'ServiceCIDR spec.cidrs', paths: ['/apis/networking.k8s.io/v1/servicecidrs', '/apis/networking.k8s.io/v1beta1/servicecidrs'],
    cidrsOf: (o) => list(at(o, 'spec', 'cidrs')) },
];

export interface Looked { kind: CidrKind; what: string; path: string; outcome: string }
export interface ClusterCidrs {
  pod: Prefix[];
  service: Prefix[];
  /** prefix text → the object it came from, e.g. "Node n1 spec.podCIDRs". */
  origin: Map<string, string>;
  /** Every source asked, and what it said. */
  looked: Looked[];
  /** Values in the objects that are not prefixes (skipped). */
  ignored: string[];
}

export class ClusterCidrError extends Error {}

const FIELD: Record<CidrKind, string> = { pod: 'bgp.podCidrs', service: 'bgp.serviceCidrs' };

/** Every object of a cluster-scoped list, page by page; undefined when the API has no such resource. */
async function listAll(client: Lister, path: string): Promise<Obj[] | undefined> {
  const items: Obj[] = [];
  let cont = '';
  do {
    let page: { items?: unknown; metadata?: { continue?: unknown } };
    try {
      page = await client.request(`${path}?limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
    items.push(...list(page.items).filter((o): o is Obj => typeof o === 'object' && o !== null));
    cont = typeof page.metadata?.continue === 'string' ? page.metadata.continue : '';
  } while (cont);
  return items;
}

/**
 * Reads the sources of the kinds asked for. Throws ClusterCidrError naming every source looked at
 * when a kind asked for has no CIDR anywhere, and the API's error when a source cannot be read.
 */
export async function deriveClusterCidrs(client: Lister, need: Record<CidrKind, boolean>): Promise<ClusterCidrs> {
  const out: ClusterCidrs = { pod: [], service: [], origin: new Map(), looked: [], ignored: [] };
  for (const src of SOURCES.filter((s) => need[s.kind])) {
    for (const path of src.paths) {
      let items: Obj[] | undefined;
      try {
        items = await listAll(client, path);
      } catch (e) {
        throw new ClusterCidrError(`${FIELD[src.kind]} is not set and ${src.what} could not be read: ${(e as Error).message} (set ${FIELD[src.kind]}, or let bgp-sync list ${path})`);
      }
      if (items === undefined) {
        out.looked.push({ kind: src.kind, what: src.what, path, outcome: 'not available (404)' });
        continue; // the next path (an older API version), if any
      }
      let found = 0;
      for (const o of items) {
        const [resource, ...field] = src.what.split(' ');
        const where = `${resource} ${String(at(o, 'metadata', 'name'))} ${field.join(' ')}`;
        src.cidrsOf(o).forEach((c, j) => {
          try {
            const p = parsePrefix(c, `${where}[${j}]`);
            out[src.kind].push(p);
            if (!out.origin.has(p.text)) out.origin.set(p.text, where);
            found++;
          } catch (e) {
            if (!(e instanceof PrefixError)) throw e;
            out.ignored.push(e.message);
          }
        });
      }
      out.looked.push({ kind: src.kind, what: src.what, path, outcome: `${items.length} object${items.length === 1 ? '' : 's'}, ${found} CIDR${found === 1 ? '' : 's'}` });
      break;
    }
  }
  for (const kind of ['pod', 'service'] as const) {
    out[kind] = outermost(out[kind]);
    if (need[kind] && out[kind].length === 0) {
      const seen = out.looked.filter((l) => l.kind === kind).map((l) => `${l.what} (GET ${l.path}: ${l.outcome})`);
      throw new ClusterCidrError(`${FIELD[kind]} is not set and the cluster does not tell: looked at ${seen.join(', ')}; set ${FIELD[kind]} in the bgp section`);
    }
  }
  return out;
}
