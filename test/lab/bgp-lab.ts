/**
 * BGP lab on top of lab.ts, shared by test/lab/bgp.test.ts and scripts/bench-bgp.mjs (no jest here).
 *
 *   node n1     gobgpd (the node speaker; gRPC API on the netns' own 127.0.0.1:50051) and
 *               `podlegs bgp-sync`, which keeps gobgpd's pod neighbors and prefix guard in step
 *   router rt   FRR (zebra + bgpd, AS 65000) peering with gobgpd over up0: 203.0.113.2/30 ↔ .1/30
 *   NF pods     [ptp (stand-in for Cilium) + podlegs] with legs; FRR (zebra + bgpd) peering with the
 *               node over eth0, configured from cni-conf/examples/frr-pod.conf.tmpl and the pod's
 *               podlegs.io/bgp-peer file
 *
 * FRR daemons run per namespace with private config/pid/vty/zserv paths under the lab dir, as the
 * `frr` user (Debian's FRR refuses root unless root is in the frrvty group).
 */
import { chownSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CniConflist, Lab, LabNode, LabPod, LabProcess } from './lab';

export const NODE_ASN = 65012;
export const ROUTER_ASN = 65000;
export const LB_ASN = 65100;
export const FW_ASN = 65200;
export const POD_CIDR = '10.10.0.0/16';      // ptp's host-local ranges are 10.10.<node>.0/24
export const SERVICE_CIDR = '10.96.0.0/12';
export const LB_VIPS = '198.51.100.0/25';    // selector "lb" may announce these
export const FW_VIPS = '198.51.100.128/25';  // selector "fw" may announce these
export const NETWORKS = { a: { vni: 100 }, b: { vni: 200 } };
const REPO = path.resolve(__dirname, '..', '..');
export const FRR_TEMPLATE = path.join(REPO, 'cni-conf', 'examples', 'frr-pod.conf.tmpl');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (${lastErr})` : ''}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------------------ FRR

export interface Frr { name: string; netns: string; dir: string; zebra: LabProcess; bgpd: LabProcess }

function frrIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('frr:'));
  if (!line) throw new Error('no frr user: install Debian\'s frr package (test/setup.sh does)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Renders the pod template: ${NAME} placeholders, VIP_NETWORKS from a list of prefixes. */
export function renderFrrTemplate(vars: { POD_NAME: string; POD_ASN: number; ROUTER_ID: string; PEER_ADDRESS: string; PEER_ASN?: number; VIPS: string[] }): string {
  const values: Record<string, string> = {
    POD_NAME: vars.POD_NAME, POD_ASN: String(vars.POD_ASN), ROUTER_ID: vars.ROUTER_ID, PEER_ADDRESS: vars.PEER_ADDRESS,
    PEER_ASN: vars.PEER_ASN === undefined ? 'unknown' : String(vars.PEER_ASN), VIP_NETWORKS: vars.VIPS.map((v) => `  network ${v}`).join('\n'),
  };
  return readFileSync(FRR_TEMPLATE, 'utf8').replace(/\$\{([A-Z_]+)\}/g, (_m, k: string) => {
    if (!(k in values)) throw new Error(`template placeholder ${k} has no value`);
    return values[k];
  });
}

/**
 * Starts zebra and bgpd in netns from one integrated config: zebra gets the global and zebra
 * lines, bgpd everything but `ip nht ...` (a zebra command).
 */
export async function startFrr(lab: Lab, netns: string, name: string, conf: string): Promise<Frr> {
  const { uid, gid } = frrIds();
  chmodSync(lab.dir, 0o711); // the frr user must reach its directory inside the lab dir
  const dir = path.join(lab.dir, `frr-${name}-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  const lines = conf.split('\n');
  writeFileSync(path.join(dir, 'zebra.conf'), `${lines.filter((l) => /^(frr defaults|hostname|log |ip nht)/.test(l)).join('\n')}\n`);
  writeFileSync(path.join(dir, 'bgpd.conf'), `${lines.filter((l) => !/^ip nht/.test(l)).join('\n')}\n`);
  for (const f of ['', 'zebra.conf', 'bgpd.conf']) chownSync(path.join(dir, f), uid, gid);
  const common = ['-u', 'frr', '-g', 'frr', '--vty_socket', dir, '-P', '0', '-z', path.join(dir, 'zserv.api')];
  const zebra = lab.spawn(netns, ['/usr/lib/frr/zebra', ...common, '-f', path.join(dir, 'zebra.conf'), '-i', path.join(dir, 'zebra.pid'), '--log', 'stdout']);
  await waitFor(`zebra in ${name}`, async () => existsSync(path.join(dir, 'zserv.api')) || (!zebra.running() && Promise.reject(new Error(zebra.stderr() + zebra.stdout()))), 10_000, 20);
  const bgpd = lab.spawn(netns, ['/usr/lib/frr/bgpd', ...common, '-f', path.join(dir, 'bgpd.conf'), '-i', path.join(dir, 'bgpd.pid'), '--log', 'stdout']);
  await waitFor(`bgpd in ${name}`, async () => existsSync(path.join(dir, 'bgpd.vty')) || (!bgpd.running() && Promise.reject(new Error(bgpd.stderr() + bgpd.stdout()))), 10_000, 20);
  return { name, netns, dir, zebra, bgpd };
}

export async function stopFrr(f: Frr): Promise<void> {
  await f.bgpd.kill();
  await f.zebra.kill();
}

export async function vtysh<T>(lab: Lab, f: Frr, cmd: string): Promise<T> {
  const r = await lab.sh(`vtysh --vty_socket ${f.dir} -d bgpd -c '${cmd}'`, { netns: f.netns });
  return JSON.parse(r.stdout) as T;
}

interface FrrPeer { state: string; connectionsEstablished: number; connectionsDropped: number; peerUptimeEstablishedEpoch?: number }
export async function frrPeer(lab: Lab, f: Frr, address: string): Promise<FrrPeer | undefined> {
  const s = await vtysh<{ ipv4Unicast?: { peers?: Record<string, FrrPeer> }; peers?: Record<string, FrrPeer> }>(lab, f, 'show bgp ipv4 unicast summary json');
  return (s.ipv4Unicast?.peers ?? s.peers)?.[address];
}

/** Prefixes in FRR's BGP table (the router's view of what the node speaker passed on). */
export async function frrPrefixes(lab: Lab, f: Frr): Promise<string[]> {
  const t = await vtysh<{ routes?: Record<string, unknown> }>(lab, f, 'show ip bgp json');
  return Object.keys(t.routes ?? {}).sort();
}

// ------------------------------------------------------------------------------------- gobgpd

export interface GobgpNeighbor { address: string; asn: number; state: number; establishedAt?: number }
export const ESTABLISHED = 6;

export async function gobgp(lab: Lab, node: LabNode, args: string): Promise<string> {
  return (await lab.sh(`gobgp -u 127.0.0.1 -p 50051 ${args}`, { netns: node.nsName })).stdout;
}

export async function gobgpNeighbors(lab: Lab, node: LabNode): Promise<GobgpNeighbor[]> {
  const raw = JSON.parse((await gobgp(lab, node, 'neighbor -j')).trim() || '[]') as {
    conf: { neighbor_address: string; peer_asn: number }; state: { session_state?: number }; timers?: { state?: { uptime?: { seconds?: number } } } }[];
  return raw.map((n) => ({
    address: n.conf.neighbor_address, asn: n.conf.peer_asn, state: n.state.session_state ?? 0,
    ...(n.state.session_state === ESTABLISHED ? { establishedAt: n.timers?.state?.uptime?.seconds } : {}),
  }));
}

/** Prefixes in gobgpd's Loc-RIB (after the import policy), with the neighbor they came from. */
export async function gobgpRib(lab: Lab, node: LabNode): Promise<Record<string, string[]>> {
  const raw = JSON.parse((await gobgp(lab, node, 'global rib -j')).trim() || '{}') as Record<string, { 'source-id'?: string; neighbor?: string; nexthop?: string }[]>;
  return Object.fromEntries(Object.entries(raw).map(([p, paths]) => [p, paths.map((x) => x.neighbor ?? x['source-id'] ?? '')]));
}

/** Prefixes a neighbor sent (before the import policy). */
export async function gobgpAdjIn(lab: Lab, node: LabNode, address: string): Promise<string[]> {
  return Object.keys(JSON.parse((await gobgp(lab, node, `neighbor ${address} adj-in -j`)).trim() || '{}') as object).sort();
}

/** Everything bgp-sync manages in gobgpd, for "nothing changed" comparisons. */
export async function gobgpSnapshot(lab: Lab, node: LabNode): Promise<string> {
  const parts = await Promise.all(['neighbor -j', 'policy neighbor -j', 'policy prefix -j', 'policy -j', 'global policy import -j']
    .map((a) => gobgp(lab, node, a)));
  const n = (JSON.parse(parts[0]) as { conf: { neighbor_address: string } }[]).map((x) => x.conf)
    .sort((a, b) => a.neighbor_address.localeCompare(b.neighbor_address));
  return JSON.stringify([n, ...parts.slice(1).map((p) => JSON.parse(p.trim() || 'null'))]);
}

export async function startGobgpd(lab: Lab, node: LabNode, routerId: string, neighbors: { address: string; asn: number }[]): Promise<LabProcess> {
  const file = path.join(node.dir, 'gobgpd.toml');
  writeFileSync(file, [
    '[global.config]', `  as = ${NODE_ASN}`, `  router-id = "${routerId}"`, '  port = 179', '',
    ...neighbors.flatMap((n) => ['[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${n.address}"`, `    peer-as = ${n.asn}`,
      '  [neighbors.timers.config]', '    connect-retry = 1', '    hold-time = 9', '    keepalive-interval = 3', '']),
  ].join('\n'));
  const p = lab.spawn(node.netns, ['gobgpd', '-f', file, '-t', 'toml', '--api-hosts', '127.0.0.1:50051', '-l', 'info', '--pprof-disable']);
  await waitFor('gobgpd API', async () => (await lab.sh('gobgp -u 127.0.0.1 -p 50051 global', { netns: node.nsName, allowFail: true })).code === 0
    || (!p.running() && Promise.reject(new Error(p.stderr()))), 15_000, 50);
  return p;
}

// ------------------------------------------------------------------------------------- pods

export interface NfPod { pod: LabPod; conf: CniConflist; ip: string; peer: { address: string; asn?: number }; labels: Record<string, string>; frr?: Frr }

export function stateDir(node: LabNode): string { return path.join(node.dir, 'state'); }

export function nfConflist(lab: Lab, node: LabNode, legs: { network: string; interface: string; ips?: string[] }[], labels: Record<string, string>): CniConflist {
  return {
    cniVersion: '1.1.0', name: 'nf',
    plugins: [lab.ptpPlugin(node), {
      type: 'podlegs', underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir }, stateDir: stateDir(node),
      log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' }, networks: NETWORKS, legs,
      bgp: { localAsn: NODE_ASN }, args: { cni: { labels: Object.entries(labels).map(([key, value]) => ({ key, value })) } },
    }],
  };
}

/** Creates the pod, runs [ptp, podlegs] ADD, reads eth0's IP and the pod's bgp-peer file. */
export async function addNf(lab: Lab, node: LabNode, name: string, labels: Record<string, string>, legs = [{ network: 'a', interface: 'net1' }]): Promise<NfPod> {
  const pod = await lab.addPod(node, name);
  const conf = nfConflist(lab, node, legs, labels);
  const r = await lab.chain(pod, 'ADD', conf);
  if (r.code !== 0) throw new Error(`ADD ${name}: ${r.stdout}${r.stderr}`);
  const res = r.json as { ips: { address: string; interface?: number }[]; interfaces: { name: string }[] };
  const eth0 = res.ips.find((ip) => res.interfaces[ip.interface ?? -1]?.name === 'eth0');
  if (!eth0) throw new Error(`ADD ${name}: no eth0 address in ${r.stdout}`);
  const peerFile = path.join(stateDir(node), 'bgp-peer', `${pod.containerId}.json`);
  const peer = JSON.parse(readFileSync(peerFile, 'utf8')) as { address: string; asn?: number };
  return { pod, conf, ip: eth0.address.split('/')[0], peer, labels };
}

export async function delNf(lab: Lab, p: NfPod): Promise<void> {
  if (p.frr) await stopFrr(p.frr);
  const r = await lab.chain(p.pod, 'DEL', p.conf);
  if (r.code !== 0) throw new Error(`DEL ${p.pod.name}: ${r.stdout}${r.stderr}`);
  await lab.removePod(p.pod);
}

export async function startPodFrr(lab: Lab, p: NfPod, asn: number, vips: string[]): Promise<Frr> {
  const conf = renderFrrTemplate({ POD_NAME: p.pod.name, POD_ASN: asn, ROUTER_ID: p.ip, PEER_ADDRESS: p.peer.address, PEER_ASN: p.peer.asn, VIPS: vips });
  p.frr = await startFrr(lab, p.pod.netns, p.pod.name, conf);
  return p.frr;
}

export async function waitEstablished(lab: Lab, node: LabNode, address: string, timeoutMs = 20_000): Promise<GobgpNeighbor> {
  return waitFor(`gobgpd session with ${address} Established`, async () =>
    (await gobgpNeighbors(lab, node)).find((n) => n.address === address && n.state === ESTABLISHED), timeoutMs, 20);
}

// -------------------------------------------------------------------------------- the topology

export interface BgpLab {
  lab: Lab;
  node: LabNode;
  router: Frr;
  gobgpd: LabProcess;
  bgpSync: LabProcess;
  syncConfig: string;
  syncConfigOf(bgp: Record<string, unknown>): Record<string, unknown>;
}

export function bgpSection(): Record<string, unknown> {
  return {
    speaker: 'gobgp', api: '127.0.0.1:50051', localAsn: NODE_ASN,
    podCidrs: [POD_CIDR], serviceCidrs: [SERVICE_CIDR], nodeAddresses: ['192.0.2.11', '203.0.113.1'],
    resyncMs: 2000,
    selectors: [
      { name: 'lb', podSelector: 'app=lb', peerAsn: LB_ASN, allowedPrefixes: [LB_VIPS] },
      { name: 'fw', podSelector: 'app=fw', peerAsn: FW_ASN, allowedPrefixes: [FW_VIPS] },
    ],
  };
}

/** Node n1 with gobgpd, router rt with FRR, bgp-sync running. */
export async function buildBgpLab(lab: Lab): Promise<BgpLab> {
  const node = lab.nodes[0];
  const rt = await lab.addPod(node, 'rt');
  await lab.sh(`ip -n ${node.nsName} link add up0 type veth peer name up0 netns ${rt.nsName}`);
  await lab.sh(`ip -n ${node.nsName} addr add 203.0.113.1/30 dev up0 && ip -n ${node.nsName} link set up0 up`);
  await lab.sh(`ip -n ${rt.nsName} addr add 203.0.113.2/30 dev up0 && ip -n ${rt.nsName} link set up0 up`);
  const gobgpd = await startGobgpd(lab, node, node.vtep, [{ address: '203.0.113.2', asn: ROUTER_ASN }]);
  const router = await startFrr(lab, rt.netns, 'rt', [
    'frr defaults datacenter', 'hostname rt', 'log stdout informational', 'router bgp 65000', ' bgp router-id 203.0.113.2',
    ' no bgp ebgp-requires-policy', ' neighbor 203.0.113.1 remote-as external', ' neighbor 203.0.113.1 timers connect 1', ''].join('\n'));
  await waitEstablished(lab, node, '203.0.113.2');
  const syncConfigOf = (bgp: Record<string, unknown>): Record<string, unknown> => ({
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir }, stateDir: stateDir(node), log: { level: 'info' }, bgp,
  });
  const syncConfig = path.join(node.dir, 'bgp-sync.json');
  writeFileSync(syncConfig, JSON.stringify(syncConfigOf(bgpSection()), null, 1));
  const bgpSync = lab.spawn(node.netns, [lab.podlegsBin, 'bgp-sync', '--config', syncConfig], { env: { NODE_NAME: node.name } });
  await bgpSync.waitFor('bgp-sync started', 15_000);
  await waitFor('bgp-sync guard in gobgpd', async () => (await gobgp(lab, node, 'global policy import')).includes('podlegs-guard'), 15_000);
  return { lab, node, router, gobgpd, bgpSync, syncConfig, syncConfigOf };
}

/** `podlegs bgp-sync --config FILE ARGS` once, in the node's netns. */
export function runBgpSyncOnce(lab: Lab, node: LabNode, config: object, args: string[]): { code: number; stdout: string; stderr: string } {
  const file = path.join(node.dir, `bgp-sync-once-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    const stdout = execFileSync('nsenter', [`--net=${node.netns}`, '--', lab.podlegsBin, 'bgp-sync', '--config', file, ...args], {
      encoding: 'utf8', env: { ...process.env, NODE_NAME: node.name }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/**
 * Restarts an NF pod the way a runtime does: FRR stops, CNI DEL, netns gone; a new sandbox gets
 * ADD (ptp hands out a new eth0 address) and FRR starts from the new bgp-peer file.
 * Returns the new pod and the time from the new IP (ADD done) to Established at the node speaker.
 */
export async function restartNf(b: BgpLab, p: NfPod, newName: string, asn: number, vips: string[], o: { frrAfterSync?: boolean } = {}): Promise<{ pod: NfPod; ms: number; syncMs: number }> {
  await delNf(b.lab, p);
  const q = await addNf(b.lab, b.node, newName, p.labels);
  const t0 = Date.now();
  if (q.ip === p.ip) throw new Error(`${newName} got the same eth0 address ${q.ip}`);
  // bgp-sync's part (neighbor configured) is watched while FRR starts in the new pod
  let syncMs = -1;
  const configured = waitFor(`neighbor ${q.ip} configured`, async () => (await gobgpNeighbors(b.lab, b.node)).some((x) => x.address === q.ip), 30_000, 10)
    .then(() => { syncMs = Date.now() - t0; });
  configured.catch(() => undefined); // awaited below; no unhandled rejection if FRR fails first
  // frrAfterSync: FRR starts only once bgp-sync configured the neighbor, as when the pod's
  // containers take longer to start than bgp-sync takes to react (the usual case in a cluster)
  if (o.frrAfterSync) await configured;
  await startPodFrr(b.lab, q, asn, vips);
  await configured;
  await waitEstablished(b.lab, b.node, q.ip, 30_000);
  return { pod: q, ms: Date.now() - t0, syncMs };
}
