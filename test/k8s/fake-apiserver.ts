// An in-process fake of the Kubernetes API server that speaks the real wire
// format for what podlegs uses: GET/PATCH (merge-patch+json) of pods, list and
// watch (resourceVersion, bookmarks, 410 Gone) of pods, nodes and NADs, NAD GET,
// event POST, lists of Cilium's CiliumNode/CiliumPodIPPool and ServiceCIDR (any
// resource can be made absent: 404, as on a cluster without that API), bearer-token
// auth, and injectable faults (status codes, hangs).
// Like a real API server it can end every watch after a while (timeoutSeconds),
// and it counts watch requests per path and open connections per client.
import * as http from 'http';
import { AddressInfo } from 'net';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Change { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj }
interface Collection { objects: Map<string, Obj>; log: Change[] }
export interface Fault { status?: number; hang?: boolean; times: number; match?: RegExp }

/** alsoServed: older API versions the same objects are served under (a real apiserver converts). */
const RESOURCES: Record<string, { apiVersion: string; kind: string; namespaced: boolean; alsoServed?: string[] }> = {
  pods: { apiVersion: 'v1', kind: 'Pod', namespaced: true },
  nodes: { apiVersion: 'v1', kind: 'Node', namespaced: false },
  'network-attachment-definitions': { apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', namespaced: true },
  events: { apiVersion: 'v1', kind: 'Event', namespaced: true },
  ciliumnodes: { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', namespaced: false },
  ciliumpodippools: { apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumPodIPPool', namespaced: false },
  servicecidrs: { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', namespaced: false, alsoServed: ['networking.k8s.io/v1beta1'] },
};

const prefixOf = (apiVersion: string): string => (apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`);

const status = (code: number, reason: string, message: string): Obj => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });

const clientOf = (s: import('net').Socket): string => (s.remoteAddress ?? '?').replace(/^::ffff:/, '');

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeApiServer {
  /** The accepted bearer token; a test rotates it (and the kubeconfig) to test credential reloads. */
  token = 'podlegs-test-token';
  /** Ends every watch after this many ms (a real apiserver does after timeoutSeconds); 0: never. */
  endWatchesAfterMs = 0;
  /** Watch requests received, per path (with the query other than watch parameters). */
  readonly watchRequests = new Map<string, number>();
  /** The same, per client: "<client address> <path>". */
  readonly watchRequestsByClient = new Map<string, number>();
  readonly calls: { method: string; path: string }[] = [];
  readonly faults: Fault[] = [];
  /** Resources this cluster does not have, as "<plural>" or "<apiVersion>/<plural>": their URLs answer 404. */
  readonly absent = new Set<string>();
  /** Changes older than this many RVs are compacted: watching from before them gets 410. */
  compactAfter = 1000;
  private rv = 100;
  private readonly cols = new Map<string, Collection>();
  private readonly watchers = new Set<{ res: http.ServerResponse; resource: string }>();
  private server?: http.Server;
  private readonly sockets = new Set<import('net').Socket>();

  constructor() {
    for (const r of Object.keys(RESOURCES)) this.cols.set(r, { objects: new Map(), log: [] });
  }

  // ---- test-side mutation (what controllers/kubelet would do) ----

  put(resource: string, obj: Obj): Obj {
    const col = this.cols.get(resource)!;
    const key = this.key(resource, obj);
    const existed = col.objects.has(key);
    const o = structuredClone(obj);
    o.apiVersion = RESOURCES[resource].apiVersion;
    o.kind = RESOURCES[resource].kind;
    o.metadata = { ...o.metadata, resourceVersion: String(++this.rv), uid: o.metadata.uid ?? `uid-${this.rv}` };
    col.objects.set(key, o);
    this.record(resource, existed ? 'MODIFIED' : 'ADDED', o);
    return o;
  }

  remove(resource: string, namespace: string | undefined, name: string): void {
    const col = this.cols.get(resource)!;
    const key = namespace ? `${namespace}/${name}` : name;
    const o = col.objects.get(key);
    if (!o) return;
    col.objects.delete(key);
    o.metadata.resourceVersion = String(++this.rv);
    this.record(resource, 'DELETED', o);
  }

  get(resource: string, namespace: string | undefined, name: string): Obj | undefined {
    return this.cols.get(resource)!.objects.get(namespace ? `${namespace}/${name}` : name);
  }

  list(resource: string): Obj[] {
    return [...this.cols.get(resource)!.objects.values()];
  }

  /** Sends a bookmark to every watcher of resource. */
  bookmark(resource: string): void {
    for (const w of this.watchers) if (w.resource === resource) this.send(w.res, { type: 'BOOKMARK', object: { kind: RESOURCES[resource].kind, apiVersion: RESOURCES[resource].apiVersion, metadata: { resourceVersion: String(this.rv) } } });
  }

  /** Ends every open watch (as an apiserver restart or timeout would). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets the change log, as etcd compaction does: watching from an older RV gets 410 Gone. */
  compact(): void {
    for (const c of this.cols.values()) c.log = [];
    this.compactedAt = this.rv;
  }
  private compactedAt = 0;

  /** Writes a raw line to every watcher of resource (to test decoders). */
  rawToWatchers(resource: string, line: string): void {
    for (const w of this.watchers) if (w.resource === resource) w.res.write(`${line}\n`);
  }

  /** Open TCP connections, per client address. */
  connections(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.sockets) out.set(clientOf(s), (out.get(clientOf(s)) ?? 0) + 1);
    return out;
  }

  /** Watches currently open, per resource. */
  openWatches(): Map<string, number> {
    const out = new Map<string, number>();
    for (const w of this.watchers) out.set(w.resource, (out.get(w.resource) ?? 0) + 1);
    return out;
  }

  // ---- server ----

  /** Starts listening; `listen` lets the caller create the socket (e.g. inside a netns). */
  async start(listen: (s: http.Server) => void = (s) => s.listen(0, '127.0.0.1')): Promise<number> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.once('close', () => this.sockets.delete(sock));
    });
    const listening = new Promise<void>((r) => this.server!.once('listening', () => r()));
    listen(this.server);
    await listening;
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private key(resource: string, o: Obj): string {
    return RESOURCES[resource].namespaced ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
  }

  private record(resource: string, type: Change['type'], object: Obj): void {
    const col = this.cols.get(resource)!;
    col.log.push({ rv: this.rv, type, object: structuredClone(object) });
    if (col.log.length > this.compactAfter) col.log.shift();
    for (const w of this.watchers) if (w.resource === resource) this.send(w.res, { type, object });
  }

  private send(res: http.ServerResponse, ev: Obj): void {
    res.write(`${JSON.stringify(ev)}\n`);
  }

  private reply(res: http.ServerResponse, code: number, body: Obj): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async body(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    this.calls.push({ method, path: url.pathname + url.search });
    const fault = this.faults.find((f) => f.times > 0 && (!f.match || f.match.test(`${method} ${url.pathname}`)));
    if (fault) {
      fault.times--;
      if (fault.hang) return; // never answer: the client's timeout must fire
      return this.reply(res, fault.status ?? 500, status(fault.status ?? 500, 'InternalError', 'injected fault'));
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return this.reply(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const m = /^\/(api\/v1|apis\/[a-z0-9.-]+\/[a-z0-9]+)(?:\/namespaces\/([^/]+))?\/([a-z-]+)(?:\/([^/]+))?$/.exec(url.pathname);
    const resource = m?.[3];
    const r = resource ? RESOURCES[resource] : undefined;
    const served = r && [r.apiVersion, ...(r.alsoServed ?? [])].find((v) => `/${m![1]}` === prefixOf(v));
    if (!m || !resource || !served || this.absent.has(resource) || this.absent.has(`${served}/${resource}`)) {
      return this.reply(res, 404, status(404, 'NotFound', `the server could not find the requested resource ${url.pathname}`));
    }
    const [ns, name] = [m[2], m[4]];
    const col = this.cols.get(resource)!;
    if (name) {
      const key = RESOURCES[resource].namespaced ? `${ns}/${name}` : name;
      const obj = col.objects.get(key);
      if (method === 'GET') {
        return obj ? this.reply(res, 200, obj) : this.reply(res, 404, status(404, 'NotFound', `${resource} "${name}" not found`));
      }
      if (method === 'PATCH') {
        if (req.headers['content-type'] !== 'application/merge-patch+json') {
          return this.reply(res, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
        }
        if (!obj) return this.reply(res, 404, status(404, 'NotFound', `${resource} "${name}" not found`));
        let patch: Obj;
        try { patch = JSON.parse(await this.body(req)); } catch { return this.reply(res, 400, status(400, 'BadRequest', 'invalid JSON')); }
        if (patch.metadata?.resourceVersion && patch.metadata.resourceVersion !== obj.metadata.resourceVersion) {
          return this.reply(res, 409, status(409, 'Conflict', 'the object has been modified'));
        }
        return this.reply(res, 200, this.put(resource, mergePatch(obj, patch) as Obj));
      }
      return this.reply(res, 405, status(405, 'MethodNotAllowed', method));
    }
    if (method === 'POST') {
      let obj: Obj;
      try { obj = JSON.parse(await this.body(req)); } catch { return this.reply(res, 400, status(400, 'BadRequest', 'invalid JSON')); }
      obj.metadata = { ...obj.metadata, namespace: ns, name: obj.metadata?.name ?? `${obj.metadata?.generateName ?? 'x'}${this.rv + 1}` };
      return this.reply(res, 201, this.put(resource, obj));
    }
    const items = [...col.objects.values()].filter((o) => !ns || o.metadata.namespace === ns);
    if (url.searchParams.get('watch') !== 'true') {
      return this.reply(res, 200, { kind: `${RESOURCES[resource].kind}List`, apiVersion: RESOURCES[resource].apiVersion, metadata: { resourceVersion: String(this.rv) }, items });
    }
    const counted = new URLSearchParams([...url.searchParams].filter(([k]) => !['watch', 'allowWatchBookmarks', 'resourceVersion', 'timeoutSeconds'].includes(k)));
    const wkey = `${url.pathname}${counted.size ? `?${counted}` : ''}`;
    this.watchRequests.set(wkey, (this.watchRequests.get(wkey) ?? 0) + 1);
    const ckey = `${clientOf(req.socket)} ${wkey}`;
    this.watchRequestsByClient.set(ckey, (this.watchRequestsByClient.get(ckey) ?? 0) + 1);
    const from = Number(url.searchParams.get('resourceVersion') || this.rv);
    const oldest = Math.max(this.compactedAt, col.log.length ? col.log[0].rv - 1 : 0);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    if (from < oldest) {
      // What a real apiserver does for a compacted RV: 200, then an ERROR event with 410.
      this.send(res, { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${oldest})`) });
      res.end();
      return;
    }
    for (const c of col.log) if (c.rv > from && (!ns || c.object.metadata.namespace === ns)) this.send(res, { type: c.type, object: c.object });
    const w = { res, resource };
    this.watchers.add(w);
    const timeoutMs = Number(url.searchParams.get('timeoutSeconds') || 0) * 1000;
    const endAfter = Math.min(...[this.endWatchesAfterMs, timeoutMs].filter((x) => x > 0));
    const timer = Number.isFinite(endAfter) ? setTimeout(() => { this.watchers.delete(w); res.end(); }, endAfter) : undefined;
    res.on('close', () => { clearTimeout(timer); this.watchers.delete(w); });
  }
}

/** A kubeconfig (JSON, which is YAML) pointing at the fake. */
export function kubeconfigFor(server: string, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'lab',
    clusters: [{ name: 'lab', cluster: { server } }],
    users: [{ name: 'podlegs', user: { token } }],
    contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'podlegs' } }],
  });
}

/** A fake API on loopback with a kubeconfig for it in a temp dir; stop() removes both. */
export async function loopbackFakeApi(): Promise<{ api: FakeApiServer; dir: string; kubeconfig: string; stop(): Promise<void> }> {
  const fs = await import('fs');
  const os = await import('os');
  const path = await import('path');
  const api = new FakeApiServer();
  const port = await api.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-k8s-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigFor(`http://127.0.0.1:${port}`, api.token));
  return { api, dir, kubeconfig, stop: async () => { await api.stop(); fs.rmSync(dir, { recursive: true, force: true }); } };
}
