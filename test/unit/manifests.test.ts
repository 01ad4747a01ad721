// The install manifests and examples under cni-conf/, checked offline:
//  - kubectl itself (Debian: kubernetes-client) decodes every file in a
//    client-side dry run (`kubectl create --dry-run=client -o json`). kubectl needs
//    API discovery to map kinds to resources even then, so it talks to a tiny
//    discovery-only server on 127.0.0.1 that serves the built-in kinds used here
//    plus the resources of the reference NAD CRDs (test/fixtures/networks-crd.yaml,
//    Multus's copy in ../shared/reference), read through kubectl too;
//  - every built-in object against the Kubernetes OpenAPI schema (kubernetes-models);
//  - every NAD against the CRD's openAPIV3Schema, and its spec.config against the
//    plugin's own loadConf and against cni-conf/schema/podlegs-config.schema.json;
//  - the DaemonSet/RBAC/ConfigMap for what podlegs needs (and no more).
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import Ajv from 'ajv';
import { loadConf } from '../../plugin/cni/config';
import { renderChained, JsonObject } from '../../plugin/conf/render';
import { parseSelections } from '../../plugin/k8s/selection';

const ROOT = path.join(__dirname, '..', '..');
const CONF = path.join(ROOT, 'cni-conf');
const FILES = {
  daemonset: path.join(CONF, 'manifests', 'podlegs-daemonset.yaml'),
  vrrpA: path.join(CONF, 'examples', 'nad-vrrp-a.yaml'),
  nfB: path.join(CONF, 'examples', 'nad-nf-b.yaml'),
  trunk: path.join(CONF, 'examples', 'nad-trunk.yaml'),
  pair: path.join(CONF, 'examples', 'vrrp-pair.yaml'),
};
const CRDS = [
  path.join(ROOT, 'test', 'fixtures', 'networks-crd.yaml'),
  path.join(ROOT, '..', 'shared', 'reference', 'k8snetworkplumbingwg-multus-cni', 'multus-daemonset-thick.nad-crd.yml'),
].filter((f) => fs.existsSync(f));
const SCHEMA = JSON.parse(fs.readFileSync(path.join(CONF, 'schema', 'podlegs-config.schema.json'), 'utf8')) as JsonObject;
const CILIUM = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', '05-cilium.conflist'), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any }; [k: string]: any };

// ---- a discovery-only API server for kubectl ---------------------------------
interface Res { group: string; version: string; plural: string; kind: string; namespaced: boolean }
const BUILTIN: Res[] = [
  { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', kind: 'ClusterRole', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false },
  { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
];
const resources: Res[] = [...BUILTIN];

function discovery(p: string): unknown {
  const gv = (r: Res): string => (r.group ? `${r.group}/${r.version}` : r.version);
  if (p === '/version') return { major: '1', minor: '30', gitVersion: 'v1.30.0-discovery-stub' };
  if (p === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  if (p === '/apis') {
    const groups = new Map<string, string>();
    for (const r of resources) if (r.group) groups.set(r.group, r.version);
    return {
      kind: 'APIGroupList', apiVersion: 'v1',
      groups: [...groups].map(([g, v]) => ({ name: g, versions: [{ groupVersion: `${g}/${v}`, version: v }], preferredVersion: { groupVersion: `${g}/${v}`, version: v } })),
    };
  }
  const list = resources.filter((r) => (r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`) === p);
  if (list.length === 0) return undefined;
  return {
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv(list[0]),
    resources: list.map((r) => ({ name: r.plural, singularName: r.kind.toLowerCase(), namespaced: r.namespaced, kind: r.kind, verbs: ['create', 'get', 'list'] })),
  };
}

let server: http.Server;
let tmp: string;
let kubectlEnv: NodeJS.ProcessEnv;

/** Splits kubectl's -o json output (one pretty object per input document, or a List). */
function splitJson(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  let depth = 0;
  let start = -1;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      if (ch === '\\') i++;
      else if (ch === '"') inStr = false;
    } else if (ch === '"') inStr = true;
    else if (ch === '{') { if (depth++ === 0) start = i; }
    else if (ch === '}') {
      if (--depth === 0) {
        const o = JSON.parse(text.slice(start, i + 1)) as K8sObject;
        if (o.kind === 'List' && Array.isArray(o.items)) out.push(...(o.items as K8sObject[]));
        else out.push(o);
      }
    }
  }
  return out;
}

function kubectlDryRun(file: string): Promise<K8sObject[]> {
  return new Promise((resolve, reject) => {
    execFile('kubectl', ['create', '--dry-run=client', '--validate=false', '-o', 'json', '-f', file], { env: kubectlEnv, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl create --dry-run=client -f ${path.basename(file)}: ${stderr || err.message}`));
      else resolve(splitJson(stdout));
    });
  });
}

const objects = new Map<string, K8sObject[]>();
const crds: K8sObject[] = [];
const all = (): K8sObject[] => [...objects.values()].flat();
const find = (kind: string, name?: string): K8sObject => {
  const o = all().find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''}`);
  return o;
};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podlegs-manifests-'));
  server = http.createServer((req, res) => {
    const body = discovery((req.url ?? '').split('?')[0]);
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = path.join(tmp, 'kubeconfig');
  fs.writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'stub',
    clusters: [{ name: 'stub', cluster: { server: `http://127.0.0.1:${port}` } }],
    users: [{ name: 'stub', user: {} }],
    contexts: [{ name: 'stub', context: { cluster: 'stub', user: 'stub', namespace: 'default' } }],
  }));
  kubectlEnv = { PATH: process.env.PATH, HOME: tmp, KUBECONFIG: kubeconfig };
  // The reference CRDs first: they define how kubectl maps NetworkAttachmentDefinition.
  for (const f of CRDS) {
    for (const crd of await kubectlDryRun(f)) {
      expect(crd.kind).toBe('CustomResourceDefinition');
      crds.push(crd);
      for (const v of crd.spec.versions as { name: string; served: boolean }[]) {
        if (!v.served) continue;
        if (!resources.some((r) => r.group === crd.spec.group && r.version === v.name && r.plural === crd.spec.names.plural)) {
          resources.push({ group: crd.spec.group, version: v.name, plural: crd.spec.names.plural, kind: crd.spec.names.kind, namespaced: crd.spec.scope === 'Namespaced' });
        }
      }
    }
  }
  for (const [k, f] of Object.entries(FILES)) objects.set(k, await kubectlDryRun(f));
}, 120_000);

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('kubectl client-side dry run', () => {
  it('read the reference NAD CRD(s)', () => {
    expect(crds.length).toBeGreaterThanOrEqual(1);
    for (const c of crds) expect(c.metadata.name).toBe('network-attachment-definitions.k8s.cni.cncf.io');
  });

  it('decodes every manifest and example into the expected objects', () => {
    const kinds = (k: string): string[] => (objects.get(k) ?? []).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds('daemonset')).toEqual(['ServiceAccount/podlegs', 'ClusterRole/podlegs', 'ClusterRoleBinding/podlegs', 'ConfigMap/podlegs-config', 'DaemonSet/podlegs']);
    expect(kinds('vrrpA')).toEqual(['NetworkAttachmentDefinition/vrrp-a']);
    expect(kinds('nfB')).toEqual(['NetworkAttachmentDefinition/nf-b']);
    expect(kinds('trunk')).toEqual(['NetworkAttachmentDefinition/mgmt', 'NetworkAttachmentDefinition/nf-trunk']);
    expect(kinds('pair')).toEqual(['ConfigMap/vrrp-pair', 'StatefulSet/vrrp-pair']);
  });

  it('is a live check: kubectl refuses an unknown kind and a malformed document', async () => {
    const typo = path.join(tmp, 'typo.yaml');
    fs.writeFileSync(typo, fs.readFileSync(FILES.nfB, 'utf8').replace('kind: NetworkAttachmentDefinition', 'kind: NetworkAttachmentDefinitions'));
    await expect(kubectlDryRun(typo)).rejects.toThrow(/NetworkAttachmentDefinitions/);
    const broken = path.join(tmp, 'broken.yaml');
    fs.writeFileSync(broken, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n');
    await expect(kubectlDryRun(broken)).rejects.toThrow();
  });

  it('puts namespaced objects in a namespace and cluster-scoped ones in none', () => {
    for (const o of all()) {
      const r = resources.find((x) => (x.group ? `${x.group}/${x.version}` : x.version) === o.apiVersion && x.kind === o.kind);
      expect(r).toBeDefined();
      if (r?.namespaced) expect(o.metadata.namespace).toBeTruthy();
      else expect(o.metadata.namespace).toBeUndefined();
    }
    for (const o of objects.get('daemonset') ?? []) if (o.metadata.namespace) expect(o.metadata.namespace).toBe('kube-system');
  });
});

describe('built-in objects against the Kubernetes OpenAPI schema (kubernetes-models)', () => {
  it('every object validates', () => {
    const builtin = all().filter((o) => o.kind !== 'NetworkAttachmentDefinition');
    expect(builtin.length).toBeGreaterThan(5);
    for (const o of builtin) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(`kubernetes-models/${o.apiVersion}/${o.kind}`) as Record<string, new (x: unknown) => { validate(): void }>;
      const Model = mod[o.kind];
      expect(() => new Model(o).validate()).not.toThrow();
    }
  });

  it('a wrong type would be caught (the check is live)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DaemonSet } = require('kubernetes-models/apps/v1/DaemonSet') as Record<string, new (x: unknown) => { validate(): void }>;
    const ds = JSON.parse(JSON.stringify(find('DaemonSet', 'podlegs'))) as K8sObject;
    ds.spec.template.spec.hostNetwork = 'yes';
    expect(() => new DaemonSet(ds).validate()).toThrow(/hostNetwork/);
  });
});

describe('NetworkAttachmentDefinitions', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const nads = (): K8sObject[] => all().filter((o) => o.kind === 'NetworkAttachmentDefinition');
  const configOf = (n: K8sObject): JsonObject => JSON.parse(n.spec.config as string) as JsonObject;

  it('match the reference CRD: group/version served, kind, and its openAPIV3Schema', () => {
    expect(nads()).toHaveLength(4);
    for (const crd of crds) {
      for (const n of nads()) {
        const v = (crd.spec.versions as { name: string; served: boolean; schema: { openAPIV3Schema: object } }[]).find((x) => `${crd.spec.group}/${x.name}` === n.apiVersion);
        expect(v?.served).toBe(true);
        expect(n.kind).toBe(crd.spec.names.kind);
        const validate = ajv.compile(v!.schema.openAPIV3Schema);
        expect(validate(n) ? [] : validate.errors).toEqual([]);
        expect(typeof n.spec.config).toBe('string');
      }
    }
  });

  it('spec.config follows the podlegs network schema (definitions.networkConfig)', () => {
    const v = new Ajv({ strict: false, allErrors: true }).addSchema(SCHEMA, 'podlegs').getSchema('podlegs#/definitions/networkConfig')!;
    for (const n of nads()) expect(v(configOf(n)) ? [] : v.errors).toEqual([]);
    expect(v({ cniVersion: '1.0.0', type: 'podlegs', vni: 100, trunk: { vlans: [{ vid: 1, network: 'a' }] } })).toBe(false);
    expect(v({ cniVersion: '1.0.0', type: 'podlegs', vni: 0 })).toBe(false);
  });

  it('each access NAD loads with the plugin\'s loadConf as Multus would hand it over (CNI_IFNAME=net1)', () => {
    const prev = process.env.PODLEGS_NODE_CONFIG;
    process.env.PODLEGS_NODE_CONFIG = path.join(tmp, 'no-node-config.json');
    try {
      for (const n of nads().filter((x) => configOf(x).vni !== undefined)) {
        const c = loadConf(JSON.stringify({ ...configOf(n), name: n.metadata.name }), 'net1');
        expect(c.mode).toBe('delegate');
        expect(c.networks.get(n.metadata.name)?.vni).toBe(configOf(n).vni);
        expect(c.legs).toEqual([expect.objectContaining({ network: n.metadata.name, interface: 'net1' })]);
      }
    } finally {
      if (prev === undefined) delete process.env.PODLEGS_NODE_CONFIG;
      else process.env.PODLEGS_NODE_CONFIG = prev;
    }
  });

  // Trunk networks in loadConf arrive with the trunk work; until then this check waits.
  const trunksParsed = ((): boolean => {
    try {
      loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'podlegs', networks: { a: { vni: 1 }, t: { trunk: { vlans: [{ vid: 10, network: 'a' }] } } } }));
      return true;
    } catch {
      return false;
    }
  })();
  (trunksParsed ? it : it.skip)('together they form a valid set of networks: distinct VNIs, the trunk\'s VLANs resolve', () => {
    // The networks of one namespace as the plugin sees them in a static config.
    const networks: JsonObject = {};
    nads().forEach((n) => {
      const { cniVersion: _v, type: _t, name: _n, ...net } = configOf(n);
      networks[n.metadata.name] = net;
    });
    // A pod on the trunk (its VLANs carry the access networks; one leg per network).
    const legs = [{ network: 'nf-trunk', interface: 'net1' }];
    const c = loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'examples', type: 'podlegs', networks, legs }));
    expect(c.legs).toEqual([{ network: 'nf-trunk', interface: 'net1', trunk: true }]);
    expect([...c.networks.values()].map((n) => n.vni).sort((a, b) => a - b)).toEqual([100, 200, 300]);
    expect((c as { trunks?: Map<string, unknown> }).trunks?.get('nf-trunk')).toEqual({ name: 'nf-trunk', vlans: [{ vid: 10, network: 'vrrp-a' }, { vid: 20, network: 'nf-b' }], nativeNetwork: 'mgmt' });
    const ns = new Set(nads().map((n) => n.metadata.namespace));
    expect(ns.size).toBe(1);
  });
});

describe('DaemonSet, RBAC and ConfigMap', () => {
  const ds = (): K8sObject => find('DaemonSet', 'podlegs');
  const podSpec = (): K8sObject['spec'] => ds().spec.template.spec;
  type Container = { name: string; command?: string[]; args?: string[]; env?: JsonObject[]; securityContext?: JsonObject; volumeMounts?: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[] };
  const containers = (): Container[] => podSpec().containers as Container[];
  const byCommand = (word: string): Container => {
    const c = containers().find((x) => (x.command ?? []).includes(word));
    if (!c) throw new Error(`no container running ${word}`);
    return c;
  };
  const hostPathOf = (volume: string): string | undefined => (podSpec().volumes as { name: string; hostPath?: { path: string } }[]).find((v) => v.name === volume)?.hostPath?.path;
  const mounts = (c: Container): Record<string, { hostPath?: string; propagation?: string }> =>
    Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.mountPath, { hostPath: hostPathOf(m.name), propagation: m.mountPropagation }]));

  it('runs on the host network as the podlegs service account, everywhere', () => {
    expect(podSpec().hostNetwork).toBe(true);
    expect(podSpec().serviceAccountName).toBe('podlegs');
    expect(podSpec().tolerations).toEqual([{ operator: 'Exists' }]);
    expect(ds().spec.selector.matchLabels).toEqual(ds().spec.template.metadata.labels);
  });

  it('init container copies the executable and both .node files into /opt/cni/bin and installs the conflist', () => {
    const init = (podSpec().initContainers as Container[])[0];
    expect(mounts(init)['/host/opt/cni/bin'].hostPath).toBe('/opt/cni/bin');
    expect(mounts(init)['/host/etc/cni/net.d'].hostPath).toBe('/etc/cni/net.d');
    const script = (init.args ?? []).join('\n');
    for (const f of ['podlegs', 'netlink.node', 'podlegs_netns.node']) expect(script).toContain(f);
    expect(script).toMatch(/mv -f/);
    expect(script).toMatch(/podlegs" conf install --cilium-dir \/host\/etc\/cni\/net.d/);
  });

  it('keeps the conflist in step with Cilium (conf install --watch)', () => {
    const c = byCommand('install');
    expect(c.command).toEqual(expect.arrayContaining(['conf', 'install', '--watch', '--cilium-dir', '/host/etc/cni/net.d', '--podlegs', '/etc/podlegs/podlegs.json']));
    expect(mounts(c)['/host/etc/cni/net.d'].hostPath).toBe('/etc/cni/net.d');
  });

  it('agent: command, NODE_NAME from spec.nodeName, privileged with NET_ADMIN, host paths', () => {
    const a = byCommand('agent');
    expect(a.command?.slice(-3)).toEqual(['agent', '--config', '/etc/podlegs/agent.json']);
    expect(a.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    expect(a.securityContext).toEqual({ privileged: true, capabilities: { add: ['NET_ADMIN'] } });
    const m = mounts(a);
    expect(m['/var/lib/podlegs'].hostPath).toBe('/var/lib/podlegs');
    expect(m['/var/log/podlegs'].hostPath).toBe('/var/log/podlegs');
    expect(m['/run/netns']).toEqual({ hostPath: '/run/netns', propagation: 'HostToContainer' });
    // The kubeconfig the install containers write is at its host path in the agent too.
    expect(m['/etc/cni/net.d'].hostPath).toBe('/etc/cni/net.d');
  });

  it('RBAC grants exactly what podlegs uses, bound to its service account', () => {
    const rules = find('ClusterRole', 'podlegs').rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const grants = new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g || 'core'}/${res}:${v}`)))));
    expect([...grants].sort()).toEqual([
      'core/events:create',
      'core/nodes:list', 'core/nodes:patch', 'core/nodes:watch',
      'core/pods:get', 'core/pods:list', 'core/pods:patch', 'core/pods:watch',
      'k8s.cni.cncf.io/network-attachment-definitions:get', 'k8s.cni.cncf.io/network-attachment-definitions:list', 'k8s.cni.cncf.io/network-attachment-definitions:watch',
    ]);
    const b = find('ClusterRoleBinding', 'podlegs');
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'podlegs' });
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'podlegs', namespace: 'kube-system' }]);
  });

  it('ConfigMap: the podlegs entry renders after the real Cilium conflist and matches the schema; agent.json loads', () => {
    const cm = find('ConfigMap', 'podlegs-config');
    const entry = JSON.parse(cm.data['podlegs.json'] as string) as JsonObject;
    const c = renderChained(CILIUM, '05-cilium.conflist', { entry });
    expect(c.plugins.map((p) => p.type)).toEqual(['cilium-cni', 'podlegs']);
    const validate = new Ajv({ strict: false, allErrors: true }).compile(SCHEMA);
    expect(validate(entry) ? [] : validate.errors).toEqual([]);
    const agent = JSON.parse(cm.data['agent.json'] as string) as JsonObject;
    expect(validate({ type: 'podlegs', ...agent }) ? [] : validate.errors).toEqual([]);
    const { agent: _a, ...rest } = agent;
    const conf = loadConf(JSON.stringify({ cniVersion: '1.1.0', name: 'podlegs', type: 'podlegs', ...rest }));
    expect(conf.registry.type).toBe('kubernetes');
    expect(conf.kubernetes?.kubeconfig).toBe('/etc/cni/net.d/podlegs.d/podlegs.kubeconfig');
  });
});

describe('VRRP pair example', () => {
  it('two keepalived pods select vrrp-a as net1 and are kept on different nodes', () => {
    const ss = find('StatefulSet', 'vrrp-pair');
    expect(ss.spec.replicas).toBe(2);
    const tpl = ss.spec.template;
    const sel = parseSelections(tpl.metadata.annotations['k8s.v1.cni.cncf.io/networks'] as string);
    expect(sel).toEqual([expect.objectContaining({ name: 'vrrp-a', interface: 'net1' })]);
    const nad = find('NetworkAttachmentDefinition', 'vrrp-a');
    expect(nad.metadata.namespace).toBe(ss.metadata.namespace);
    const anti = tpl.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution as { labelSelector: { matchLabels: Record<string, string> }; topologyKey: string }[];
    expect(anti).toHaveLength(1);
    expect(anti[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(tpl.metadata.labels).toMatchObject(anti[0].labelSelector.matchLabels);
    const conf = find('ConfigMap', 'vrrp-pair').data['keepalived.conf'] as string;
    expect(conf).toMatch(/interface net1/);
    expect(tpl.spec.containers[0].volumeMounts[0].mountPath).toBe('/etc/keepalived');
  });
});
