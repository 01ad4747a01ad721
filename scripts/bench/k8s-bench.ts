// Kubernetes-mode figures (printed, never asserted): API calls and latency of
// an ADD with 2 legs through the fake API vs static mode, and the agent's RSS
// while it watches 5000 pods. Bundled and run by scripts/bench-k8s.mjs, as root.
import * as fs from 'fs';
import * as path from 'path';
import { FakeApiServer, kubeconfigFor } from '../../test/k8s/fake-apiserver';
import { inNetns } from '../../overlay/kernel/netns';
import { Lab } from '../../test/lab/lab';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ITER = Number(process.env.BENCH_K8S_ITER ?? 20);
const PODS = Number(process.env.BENCH_K8S_PODS ?? 5000);
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const prevResult = (netns: string): Json => ({
  cniVersion: '0.3.1',
  interfaces: [{ name: 'lxc0123456789ab', mac: '6a:1f:c4:90:2e:b7' }, { name: 'eth0', mac: 'd2:5a:8e:3b:71:04', sandbox: netns }],
  ips: [{ version: '4', interface: 1, address: '10.0.1.23/32', gateway: '10.0.1.250' }],
  routes: [{ dst: '10.0.1.250/32' }, { dst: '0.0.0.0/0', gw: '10.0.1.250' }], dns: {},
});

async function main(): Promise<void> {
  const lab = await Lab.create({ nodes: 1, podlegsBin: process.env.PODLEGS_BIN });
  const api = new FakeApiServer();
  let agent: ReturnType<Lab['spawn']> | undefined;
  try {
    const node = lab.nodes[0];
    await lab.sh('ip addr add 192.0.2.1/24 dev ulbr', { netns: lab.underlay });
    const port = await api.start((s) => inNetns(`/var/run/netns/${lab.underlay}`, () => s.listen(6443)));
    const kubeconfig = path.join(lab.dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, kubeconfigFor(`http://192.0.2.1:${port}`, api.token));
    for (const [name, vni] of [['a', 100], ['b', 200]] as const) {
      api.put('network-attachment-definitions', { metadata: { name, namespace: 'nf' }, spec: { config: JSON.stringify({ type: 'podlegs', vni }) } });
    }
    const base = { underlay: { interface: 'ul0' }, stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'info' }, agent: { socket: node.agentSocket } };
    const k8sEntry = { cniVersion: '0.3.1', name: 'cilium', type: 'podlegs', ...base, kubernetes: { kubeconfig } };
    const staticEntry = { cniVersion: '0.3.1', name: 'cilium', type: 'podlegs', ...base, registry: { type: 'file', path: lab.registryDir }, networks: { a: { vni: 100 }, b: { vni: 200 } } };
    const pod = await lab.addPod(node, 'bench');
    const times: Record<string, number[]> = { 'static ADD (2 legs)': [], 'kubernetes ADD, NAD GETs (2 legs)': [], 'kubernetes ADD, NADs cached by agent': [] };
    const calls: Record<string, number[]> = { 'kubernetes ADD, NAD GETs (2 legs)': [], 'kubernetes ADD, NADs cached by agent': [] };
    const nadCache = path.join(node.dir, 'state', 'nads');
    for (let i = 0; i <= ITER; i++) {
      for (const scenario of Object.keys(times)) {
        const k8s = scenario.startsWith('kubernetes');
        if (k8s) api.put('pods', { metadata: { name: 'bench', namespace: 'nf', annotations: { 'k8s.v1.cni.cncf.io/networks': 'a@net1,b@net2' } }, spec: { nodeName: node.name } });
        if (scenario.endsWith('cached by agent')) {
          for (const n of ['a', 'b']) {
            fs.mkdirSync(path.join(nadCache, 'nf'), { recursive: true });
            fs.writeFileSync(path.join(nadCache, 'nf', `${n}.json`), JSON.stringify(api.get('network-attachment-definitions', 'nf', n)));
          }
        } else fs.rmSync(nadCache, { recursive: true, force: true });
        const conf = k8s ? { ...k8sEntry, prevResult: prevResult(pod.netns) } : { ...staticEntry, prevResult: prevResult(pod.netns), legs: [{ network: 'a', interface: 'net1' }, { network: 'b', interface: 'net2' }] };
        const before = api.calls.length;
        const t0 = process.hrtime.bigint();
        const r = await lab.exec(node, 'podlegs', { command: 'ADD', pod, conf, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=bench' });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.code !== 0) throw new Error(`${scenario}: ${r.stdout}`);
        if (i > 0) {
          times[scenario].push(ms);
          calls[scenario]?.push(api.calls.length - before);
        }
        const d = await lab.exec(node, 'podlegs', { command: 'DEL', pod, conf });
        if (d.code !== 0) throw new Error(`DEL ${scenario}: ${d.stdout}`);
      }
    }
    console.log(`\nKubernetes mode, ADD of a pod with 2 legs (median of ${ITER}, interleaved; process wall time incl. node start)`);
    for (const [k, v] of Object.entries(times)) {
      console.log(`  ${k.padEnd(40)} ${median(v).toFixed(1).padStart(7)} ms${calls[k] ? `   API calls per ADD: ${median(calls[k])}` : ''}`);
    }
    console.log(`  ratio kubernetes(cached NADs)/static      ${(median(times['kubernetes ADD, NADs cached by agent']) / median(times['static ADD (2 legs)'])).toFixed(2)}`);

    // Agent RSS while watching PODS pods (2 legs each) spread over 100 nodes.
    for (let n = 0; n < 100; n++) api.put('nodes', { metadata: { name: `w${n}`, annotations: { 'podlegs.io/vtep': `10.${1 + Math.floor(n / 250)}.${n % 250}.1` } }, status: { addresses: [{ type: 'InternalIP', address: `10.${1 + Math.floor(n / 250)}.${n % 250}.1` }] } });
    api.put('nodes', { metadata: { name: node.name }, status: { addresses: [{ type: 'InternalIP', address: node.vtep }] } });
    const status = (i: number): string => JSON.stringify([
      { name: 'cilium', interface: 'eth0', ips: ['10.0.0.1'], default: true, dns: {} },
      { name: 'nf/a', interface: 'net1', mac: `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ips: [], dns: {}, 'podlegs.io/vni': 100 },
      { name: 'nf/b', interface: 'net2', mac: `02:00:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ips: [], dns: {}, 'podlegs.io/vni': 200 },
    ]);
    for (let i = 0; i < PODS; i++) {
      api.put('pods', { metadata: { name: `p${i}`, namespace: 'nf', labels: { app: 'lb' }, annotations: { 'k8s.v1.cni.cncf.io/network-status': status(i) } }, spec: { nodeName: `w${i % 100}`, containers: [{ name: 'c', image: 'x' }] }, status: { phase: 'Running', podIP: '10.0.0.1' } });
    }
    const file = path.join(node.dir, 'agent.json');
    fs.writeFileSync(file, JSON.stringify({ ...base, log: { level: 'warn' }, registry: { type: 'kubernetes' }, kubernetes: { kubeconfig } }));
    agent = lab.spawn(node.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: node.name } });
    const t0 = Date.now();
    let members = 0;
    while (Date.now() - t0 < 60_000) {
      const m = await lab.sh(`python3 -c "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9750/metrics').read().decode())"`, { netns: node.nsName, allowFail: true });
      members = Number(/^podlegs_members (\d+)/m.exec(m.stdout)?.[1] ?? 0);
      if (members >= PODS * 2) break;
      await sleep(200);
    }
    const st = fs.readFileSync(`/proc/${agent.pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? 0);
    console.log(`\nAgent watching ${PODS} pods (${members} members) on 100 nodes: synced in ${Date.now() - t0} ms, RSS ${(kb('VmRSS') / 1024).toFixed(0)} MB, peak ${(kb('VmHWM') / 1024).toFixed(0)} MB (target <= 200 MB)`);
  } finally {
    await agent?.kill();
    await api.stop();
    await lab.destroy();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
