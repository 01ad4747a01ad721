// The reflectors against an API server that ends every watch after 1 s, as a real
// one does after timeoutSeconds (and on restarts, load-balancer resets): one watch
// request per resource per ended watch, a constant number of connections, and
// membership still followed afterwards. Plus: a watch answered 401 rereads the
// kubeconfig, and the ADD's API budget bounds all requests together.
import * as fs from 'fs';
import * as net from 'net';
import { FakeApiServer, kubeconfigFor, loopbackFakeApi } from '../k8s/fake-apiserver';
import { ApiBudget, KubeClient } from '../../overlay/kube/http';
import { readKubeconfig } from '../../overlay/kube/kubeconfig';
import { KubeObject, ListWatch } from '../../overlay/kube/list-watch';
import { KubernetesMembership } from '../../overlay/agent/k8s/membership-source';
import { kubernetesPodClient } from '../../plugin/k8s/pod-client';
import { KubernetesPodSource } from '../../plugin/bgp/pods';
import { NETWORK_STATUS_ANNOTATION } from '../../overlay/agent/k8s/network-status';
import { nadVnis } from '../../plugin/k8s/nad';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await Promise.resolve().then(cond).catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
};

let api: FakeApiServer;
let kubeconfig: string;
let stopApi: () => Promise<void>;
beforeEach(async () => {
  const f = await loopbackFakeApi();
  ({ api, kubeconfig } = f);
  stopApi = f.stop;
});
afterEach(() => stopApi());

const legStatus = (mac: string): string => JSON.stringify([
  { name: 'cilium', interface: 'eth0', ips: ['10.0.1.5'], default: true, dns: {} },
  { name: 'nf/vrrp-a', interface: 'net1', mac, dns: {}, 'podlegs.io/vni': 100 },
]);
const nfPod = (name: string, node: string, mac: string): Record<string, unknown> => ({
  metadata: { name, namespace: 'nf', labels: { app: 'lb' }, annotations: { [NETWORK_STATUS_ANNOTATION]: legStatus(mac) } },
  spec: { nodeName: node }, status: { phase: 'Running', podIP: '10.0.1.5' },
});

describe('watches the API server keeps ending', () => {
  const RUN_S = 60;

  it(`one minute of watches ended every second: ~1 watch per resource per second, constant connections, membership followed`, async () => {
    api.endWatchesAfterMs = 1000;
    api.put('nodes', { metadata: { name: 'n1', annotations: { 'podlegs.io/vtep': '192.0.2.11' } }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.11' }] } });
    api.put('pods', nfPod('a', 'n1', '02:00:00:00:00:0a'));
    const client = new KubeClient(readKubeconfig(kubeconfig), async () => readKubeconfig(kubeconfig));
    const members = new KubernetesMembership(client, { nadVnis });
    const bgpPods = new KubernetesPodSource(kubernetesPodClient(kubeconfig), 'n1'); // bgp-sync's source
    const unwatch = bgpPods.watch(() => undefined);
    members.start();
    const samples: { s: number; conns: number; watches: Record<string, number> }[] = [];
    try {
      await until('synced', async () => members.pods.synced && members.nodes.synced && members.nads.synced && (await bgpPods.list()).length === 1);
      const t0 = Date.now();
      const counts0 = new Map(api.watchRequests);
      const perPath = (): Record<string, number> =>
        Object.fromEntries([...api.watchRequests].map(([p, n]) => [p, n - (counts0.get(p) ?? 0)]));
      while (Date.now() - t0 < RUN_S * 1000) {
        await sleep(1000);
        const s = (Date.now() - t0) / 1000;
        const conns = [...api.connections().values()].reduce((a, b) => a + b, 0);
        samples.push({ s, conns, watches: perPath() });
        // Stop early once the watches multiply (the old reflector doubled them every second).
        const worst = Math.max(...Object.values(perPath()));
        if (worst > 2 * s + 4 || conns > 40) break;
      }
      const elapsed = (Date.now() - t0) / 1000;
      const watches = perPath();
      const conns = samples.map((x) => x.conns);
      process.stdout.write(`watch churn over ${elapsed.toFixed(1)} s: watch requests per path ${JSON.stringify(watches)}; `
        + `open connections min/max ${Math.min(...conns)}/${Math.max(...conns)}, last ${conns[conns.length - 1]}; `
        + `test process RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB\n`);
      expect(Object.keys(watches).sort()).toEqual([
        '/api/v1/nodes', '/api/v1/pods', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1', '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions',
      ]);
      for (const n of Object.values(watches)) {
        expect(n).toBeLessThanOrEqual(2 * elapsed + 2); // about one per second (the server ends each after 1 s)
        expect(n).toBeGreaterThanOrEqual(elapsed / 4); // the watches really were ended and resumed
      }
      // Four reflectors: at most one request each at any time, plus sockets being replaced.
      expect(Math.max(...conns)).toBeLessThanOrEqual(8);
      expect(Math.max(...[...api.openWatches().values()])).toBeLessThanOrEqual(2); // pods: the agent's and bgp-sync's
      // Still following: a new member on a new node appears, for the agent and for bgp-sync.
      api.put('nodes', { metadata: { name: 'n2', annotations: { 'podlegs.io/vtep': '192.0.2.12' } }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.12' }] } });
      api.put('pods', nfPod('b', 'n2', '02:00:00:00:00:0b'));
      api.put('pods', { ...nfPod('c', 'n1', '02:00:00:00:00:0c'), status: { phase: 'Running', podIP: '10.0.1.6' } });
      await until('new member', async () => (await members.list()).members.some((m) => m.vtep === '192.0.2.12' && m.mac === '02:00:00:00:00:0b'));
      await until('bgp-sync sees the new pod', async () => (await bgpPods.list()).some((p) => p.name === 'c'));
    } finally {
      members.stop();
      unwatch();
    }
    // Stopped means stopped: no watch stays open behind the stopped reflectors.
    await until('watches closed', () => api.openWatches().size === 0, 5000);
  }, (RUN_S + 60) * 1000);

  it('a watch answered 401 rereads the kubeconfig and goes on with the new token', async () => {
    const client = new KubeClient(readKubeconfig(kubeconfig), async () => readKubeconfig(kubeconfig));
    const lw = new ListWatch<KubeObject>(client, '/api/v1/pods', { onChange: () => undefined, backoffMs: { initial: 50, max: 400 } });
    lw.start();
    try {
      await until('synced', () => lw.synced);
      // The token rotates: the API accepts only the new one, the installer rewrote the kubeconfig.
      api.token = 'rotated-token';
      fs.writeFileSync(kubeconfig, kubeconfigFor(client.target.server, api.token));
      const relists = lw.relists;
      api.dropWatches(); // the reflector watches again, with the old token first
      api.put('pods', { metadata: { name: 'after-rotation', namespace: 'nf' } });
      await until('pod seen with the new token', () => lw.items.has('nf/after-rotation'), 10_000);
      expect(client.target.token).toBe('rotated-token');
      expect(lw.relists).toBe(relists); // resumed from its resourceVersion, no relist needed
    } finally {
      lw.stop();
    }
  }, 30_000);
});

describe('the API budget of a CNI command', () => {
  it('bounds every request and retry together against a TLS server that accepts and never answers', async () => {
    const silent = net.createServer((s) => s.on('data', () => undefined)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const budget = new ApiBudget(3000);
      const client = new KubeClient({ server: `https://127.0.0.1:${port}`, token: 'x' }, undefined, budget);
      const t0 = Date.now();
      const errors: string[] = [];
      for (const p of ['/api/v1/namespaces/nf/pods/p', '/apis/k8s.cni.cncf.io/v1/namespaces/nf/network-attachment-definitions/a', '/api/v1/namespaces/nf/pods/p']) {
        errors.push(await client.request(p).then(() => 'answered', (e: Error) => e.message));
      }
      const elapsed = Date.now() - t0;
      // Three requests of 2 s with one retry each would take > 12 s; together they get 3 s.
      expect(elapsed).toBeLessThan(3000 + 2000);
      expect(errors[errors.length - 1]).toMatch(/3000 ms the API part of this command may take/);
      expect(budget.remaining()).toBeLessThanOrEqual(0);
    } finally {
      silent.close();
    }
  });
});
