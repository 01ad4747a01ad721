// The Kubernetes client, reflector and membership source against the fake API
// server on loopback: wire format, faults and relists.
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor, loopbackFakeApi, mergePatch } from '../k8s/fake-apiserver';
import { KubeClient } from '../../overlay/kube/http';
import { readKubeconfig } from '../../overlay/kube/kubeconfig';
import { apiFailure } from '../../plugin/k8s/pod-legs';
import { ListWatch, KubeObject } from '../../overlay/kube/list-watch';
import { KubernetesMembership, membersFrom, NodeLike, PodLike } from '../../overlay/agent/k8s/membership-source';
import { buildNetworkStatus } from '../../plugin/k8s/network-status';
import { legsFromStatus, NETWORK_STATUS_ANNOTATION } from '../../overlay/agent/k8s/network-status';
import { nadVnis } from '../../plugin/k8s/nad';
import { SEEN_MS, waitUntil } from '../support/wait';

jest.setTimeout(2 * SEEN_MS);

const referencePod = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/pod-with-network-status.json'), 'utf8'));
/** Waits (generously) for cond; a timeout names the condition's source. */
const until = async (cond: () => boolean): Promise<void> => { await waitUntil(String(cond), cond, SEEN_MS, 10); };

let api: FakeApiServer;
let client: KubeClient;
let dir: string;

let stopApi: () => Promise<void>;
beforeEach(async () => {
  const f = await loopbackFakeApi();
  ({ api, dir } = f);
  stopApi = f.stop;
  client = new KubeClient(readKubeconfig(f.kubeconfig));
});
afterEach(() => stopApi());

describe('KubeClient', () => {
  it('GETs and merge-PATCHes a pod, keeping other annotations', async () => {
    api.put('pods', referencePod);
    const p = await client.request<{ metadata: { annotations: Record<string, string> } }>('/api/v1/namespaces/default/pods/samplepod');
    expect(p.metadata.annotations['k8s.v1.cni.cncf.io/networks']).toBe('macvlan-conf');
    await client.request('/api/v1/namespaces/default/pods/samplepod', { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { annotations: { x: '1' } } } });
    const after = api.get('pods', 'default', 'samplepod')!;
    expect(after.metadata.annotations).toMatchObject({ x: '1', 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' });
    expect(api.calls.map((c) => c.method)).toEqual(['GET', 'PATCH']);
  });

  it.each([[401], [403], [404], [409], [500]])('maps HTTP %d to code 11 with the status in the message', async (code) => {
    api.faults.push({ status: code, times: 5 });
    const err = await client.request('/api/v1/namespaces/a/pods/b', { retries: 1 }).catch((e) => e);
    const cni = apiFailure(err, 'pod a/b');
    expect(cni.code).toBe(11);
    expect(cni.message).toContain('pod a/b');
    // 5xx is retried (bounded); 4xx is not.
    expect(api.calls.length).toBe(code >= 500 ? 2 : 1);
  });

  it('gives up on a hanging server: each attempt ends at its timeout, retries are bounded', async () => {
    api.faults.push({ hang: true, times: 10 });
    const err = await client.request('/api/v1/namespaces/a/pods/b', { timeoutMs: 200, retries: 1 }).catch((e: Error) => e);
    // The server never answers: getting here at all means the client gave up (jest's timeout
    // catches a hang). Which timeout ended it, and how often it tried, says the bound is honoured.
    expect((err as Error).message).toContain('timed out after 200 ms');
    expect(client.calls).toBe(2);
    expect(apiFailure(err, 'x').code).toBe(11);
  });

  it('rejects a PATCH with the wrong content type (like the real apiserver)', async () => {
    api.put('pods', referencePod);
    const err = await client.request('/api/v1/namespaces/default/pods/samplepod', { method: 'PATCH', body: {} }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(415);
  });

  it('merge patch follows RFC 7386', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] })).toEqual({ a: 1, b: { d: 3, e: 4 }, f: [1] });
  });
});

describe('ListWatch', () => {
  const pod = (name: string, extra: Record<string, unknown> = {}): KubeObject & Record<string, unknown> => ({ metadata: { name, namespace: 'nf' }, ...extra });

  it('lists, then follows ADDED/MODIFIED/DELETED and bookmarks', async () => {
    api.put('pods', pod('a'));
    let changes = 0;
    const lw = new ListWatch(client, '/api/v1/pods', { onChange: () => changes++ });
    lw.start();
    await until(() => lw.synced && changes === 1);
    api.put('pods', pod('b'));
    api.put('pods', pod('a', { spec: { nodeName: 'n1' } }));
    await until(() => lw.items.size === 2 && changes === 3);
    api.remove('pods', 'nf', 'a');
    await until(() => !lw.items.has('nf/a'));
    api.bookmark('pods');
    await new Promise((r) => setTimeout(r, 50));
    expect(lw.relists).toBe(1);
    expect(api.calls.filter((c) => c.path.includes('allowWatchBookmarks=true'))).toHaveLength(1);
    lw.stop();
  });

  it('relists after 410 Gone on a compacted resourceVersion', async () => {
    api.put('pods', pod('a'));
    const lw = new ListWatch(client, '/api/v1/pods', { onChange: () => undefined });
    lw.start();
    await until(() => lw.synced);
    // The watch breaks; while the client is away, changes happen and etcd compacts.
    api.dropWatches();
    api.put('pods', pod('b'));
    api.put('pods', pod('c'));
    api.compact();
    await until(() => lw.relists >= 2 && lw.items.size === 3);
    api.put('pods', pod('d'));
    await until(() => lw.items.size === 4);
    expect(lw.relists).toBe(2);
    lw.stop();
  });

  it('never swallows a decode error: reports it and relists', async () => {
    const errors: string[] = [];
    const lw = new ListWatch(client, '/api/v1/pods', { onChange: () => undefined, onError: (w) => errors.push(w) });
    lw.start();
    await until(() => lw.synced);
    api.rawToWatchers('pods', '{"type":"ADDED","object":');
    await until(() => lw.relists === 2);
    expect(errors.some((e) => e.startsWith('decode'))).toBe(true);
    lw.stop();
  });

  it('backs off within bounds on the injected clock', async () => {
    api.faults.push({ status: 500, times: 6 });
    const waits: number[] = [];
    const clock = { now: () => 0, setTimeout: (fn: () => void, ms: number) => { waits.push(ms); return setTimeout(fn, 1); }, clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
    const lw = new ListWatch(client, '/api/v1/pods', { clock, backoffMs: { initial: 100, max: 800 }, onChange: () => undefined });
    lw.start();
    await until(() => lw.synced);
    expect(waits).toEqual([100, 200, 400, 800, 800, 800]);
    lw.stop();
  });
});

describe('network-status and membership', () => {
  const prev = { interfaces: [{ name: 'lxc1' }, { name: 'eth0', mac: 'd2:5a:8e:3b:71:04', sandbox: '/var/run/netns/x' }], ips: [{ address: '10.0.1.23/32', gateway: '10.0.1.250', interface: 1 }] };
  const status = buildNetworkStatus('cilium', prev, [{ network: 'nf/vrrp-a', ifname: 'net1', mac: '02:00:00:00:00:01', mtu: 1450, ips: ['192.0.2.5/24'], vni: 100 }]);

  it('puts eth0 first with default: true, in the shape of Multus', () => {
    const reference = JSON.parse(referencePod.metadata.annotations[NETWORK_STATUS_ANNOTATION]);
    expect(status[0]).toEqual(reference[0]);
    expect(status[1]).toEqual({ name: 'nf/vrrp-a', interface: 'net1', ips: ['192.0.2.5'], mac: '02:00:00:00:00:01', mtu: 1450, dns: {}, 'podlegs.io/vni': 100 });
  });

  it('reads legs back and turns pods on nodes into members', () => {
    expect(legsFromStatus(JSON.stringify(status))).toEqual([{ network: 'nf/vrrp-a', ifname: 'net1', mac: '02:00:00:00:00:01', vni: 100 }]);
    const pods: PodLike[] = [
      { metadata: { name: 'a', namespace: 'nf', uid: 'u1', annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status) } }, spec: { nodeName: 'n1' } },
      { metadata: { name: 'b', namespace: 'nf', uid: 'u2', annotations: { [NETWORK_STATUS_ANNOTATION]: '{broken' } }, spec: { nodeName: 'n1' } },
      { metadata: { name: 'c', namespace: 'nf', uid: 'u3', annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status) } }, spec: { nodeName: 'n9' } },
    ];
    const nodes = new Map<string, NodeLike>([['n1', { metadata: { name: 'n1', annotations: { 'podlegs.io/vtep': '192.0.2.11' } }, status: { addresses: [{ type: 'InternalIP', address: '198.51.100.1' }] } }]]);
    const { members, problems } = membersFrom(pods, nodes);
    expect(members).toEqual([{ vni: 100, vtep: '192.0.2.11', mac: '02:00:00:00:00:01', owner: 'u1/net1', network: 'nf/vrrp-a' }]);
    expect(problems.map((p) => p.where)).toEqual(['pod nf/b', 'pod nf/c']);
  });

  it('a node is reached only at the VTEP its agent published, never at a guessed InternalIP', () => {
    const pods: PodLike[] = [{ metadata: { name: 'a', namespace: 'nf', uid: 'u1', annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status) } }, spec: { nodeName: 'n2' } }];
    const unpublished = new Map<string, NodeLike>([['n2', { metadata: { name: 'n2' }, status: { addresses: [{ type: 'InternalIP', address: '198.51.100.2' }] } }]]);
    const r = membersFrom(pods, unpublished);
    expect(r.members).toEqual([]);
    expect(r.problems).toEqual([{ where: 'pod nf/a', reason: expect.stringMatching(/node n2 has not published its VTEP \(annotation podlegs\.io\/vtep\); is the podlegs agent running there\?/) }]);
  });

  it('the source lists only once synced and signals changes from the watch', async () => {
    api.put('nodes', { metadata: { name: 'n1', annotations: { 'podlegs.io/vtep': '192.0.2.11' } }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.11' }] } });
    const src = new KubernetesMembership(client, { nadVnis });
    await expect(src.list()).rejects.toThrow(/not synced/);
    let signals = 0;
    src.watch(() => signals++);
    src.start();
    await until(() => src.pods.synced && src.nodes.synced);
    api.put('pods', { metadata: { name: 'a', namespace: 'nf', annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status) } }, spec: { nodeName: 'n1' } });
    await until(() => src.pods.items.size === 1);
    expect((await src.list()).members).toHaveLength(1);
    expect(signals).toBeGreaterThanOrEqual(3);
    src.stop();
  });
});

describe('credential rotation', () => {
  it('a long-running client reads the kubeconfig again after a 401 and goes on', async () => {
    api.put('pods', referencePod);
    const kc = path.join(dir, 'rotating');
    fs.writeFileSync(kc, kubeconfigFor(`${client.target.server}`, 'old-token'));
    const rotating = new KubeClient(readKubeconfig(kc), async () => readKubeconfig(kc));
    await expect(rotating.request('/api/v1/namespaces/default/pods/samplepod')).rejects.toMatchObject({ status: 401 });
    fs.writeFileSync(kc, kubeconfigFor(`${client.target.server}`, api.token)); // the installer rewrote it
    const p = await rotating.request<{ metadata: { name: string } }>('/api/v1/namespaces/default/pods/samplepod');
    expect(p.metadata.name).toBe('samplepod');
  });
});
