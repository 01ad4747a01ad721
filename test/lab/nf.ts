/**
 * Helpers shared by the multi-node lab tests and the demo (no jest here: the demo bundles this
 * file with esbuild and runs it with plain node).
 *
 *   podlegsEntry / podConflist   a static-mode podlegs entry (and [ptp, podlegs] conflist) for a pod
 *   startAgent                   `podlegs agent` in a node's netns, waited for until "agent started"
 *   floodDsts                    all-zero FDB entries of plvx<vni> on a node
 *   waitUntil, CONVERGE_MS       polling up to a generous bound (test/support/wait.ts)
 *   nodeLeftovers                pl* links, registry files, state files left on a lab
 *   keepalived*                  a keepalived VRRP instance on a pod's leg, its VIP, a crash
 *
 * Everything runs inside the lab's namespaces (lab.sh / lab.spawn with a netns).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CniConflist, CniOutcome, CniPluginConf, Lab, LabNode, LabPod, LabProcess, leakCheck } from './lab';
import { CONVERGE_MS, SEEN_MS, sleep, waitUntil } from '../support/wait';

export { CONVERGE_MS, SEEN_MS, sleep, waitUntil };

/** The networks every lab test and the demo use: name → VNI (IPs 10.<vni>.0.x/24 by convention). */
export const NETWORKS: Record<string, { vni: number; mtu?: number }> = {
  a: { vni: 100 },
  b: { vni: 200 },
};

export interface Leg { network: string; interface: string; ips?: string[]; mac?: string }
export interface EntryOptions { networks?: Record<string, { vni: number; mtu?: number }>; logLevel?: string }

/** Node-wide part of the podlegs config (the plugin entry and the agent file share it). */
export function nodeConfig(lab: Lab, node: LabNode, logFile?: string, level = 'debug'): Record<string, unknown> {
  return {
    underlay: { interface: 'ul0' },
    registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(node.dir, 'state'),
    log: logFile ? { file: logFile, level } : { level },
    agent: { socket: node.agentSocket },
  };
}

/** A static-mode podlegs plugin entry giving a pod on `node` these legs. */
export function podlegsEntry(lab: Lab, node: LabNode, legs: Leg[], o: EntryOptions = {}): CniPluginConf {
  return {
    type: 'podlegs',
    ...nodeConfig(lab, node, path.join(node.dir, 'podlegs.log'), o.logLevel ?? 'debug'),
    networks: o.networks ?? NETWORKS,
    legs,
  };
}

/** [ptp (stand-in for Cilium), podlegs] for a pod on `node`. */
export function podConflist(lab: Lab, node: LabNode, legs: Leg[], o: EntryOptions & { cniVersion?: string; name?: string } = {}): CniConflist {
  return { cniVersion: o.cniVersion ?? '1.1.0', name: o.name ?? 'nf', plugins: [lab.ptpPlugin(node), podlegsEntry(lab, node, legs, o)] };
}

/** A pod with its conflist, as the tests keep them. */
export interface NfPod { pod: LabPod; conf: CniConflist; legs: Leg[] }

/** Creates the pod netns and runs ADD of [ptp, podlegs]; throws with the CNI output on failure. */
export async function addNfPod(lab: Lab, node: LabNode, name: string, legs: Leg[], o: EntryOptions = {}): Promise<NfPod> {
  const pod = await lab.addPod(node, name);
  const conf = podConflist(lab, node, legs, o);
  const r = await lab.chain(pod, 'ADD', conf);
  if (r.code !== 0) throw new Error(`ADD ${name} on ${node.name} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return { pod, conf, legs };
}

export async function delNfPod(lab: Lab, p: NfPod): Promise<void> {
  const r = await lab.chain(p.pod, 'DEL', p.conf);
  if (r.code !== 0) throw new Error(`DEL ${p.pod.name} failed (${r.code}): ${r.stdout}${r.stderr}`);
}

/**
 * Lab agents' grace period for segments left without legs: short, so a "nothing left" check
 * after a DEL the agent served waits briefly for the agent to remove them (the rule with its
 * default length is tested in test/lab/agent.test.ts).
 */
export const LAB_GRACE_S = 1;

/**
 * What is left on the lab's nodes once the agents' grace period for emptied segments has
 * passed: polls until nothing is (generous bound), then returns what it last saw.
 */
export async function settledLeftovers(lab: Lab): Promise<string[]> {
  let left: string[] = [];
  await waitUntil('agents removed emptied segments', async () => (left = await nodeLeftovers(lab)).length === 0, CONVERGE_MS).catch(() => undefined);
  return left;
}

/** Starts `podlegs agent` in the node's netns (logs to its stderr) and waits for "agent started". */
/** graceSeconds: the agent's gracePeriodSeconds (segments the calls it serves leave empty go this long after). */
export async function startAgent(lab: Lab, node: LabNode, o: { resyncMs?: number; graceSeconds?: number } = {}): Promise<LabProcess> {
  const file = path.join(node.dir, 'agent.json');
  const conf = nodeConfig(lab, node, undefined, 'info');
  conf.agent = { ...(conf.agent as object), gracePeriodSeconds: o.graceSeconds ?? LAB_GRACE_S };
  writeFileSync(file, JSON.stringify(conf, null, 1));
  const env: Record<string, string> = { NODE_NAME: node.name };
  if (o.resyncMs !== undefined) env.PODLEGS_RESYNC_MS = String(o.resyncMs);
  const agent = lab.spawn(node.netns, [lab.podlegsBin, 'agent', '--config', file], { env });
  try {
    await agent.waitFor('agent started', SEEN_MS);
  } catch (e) {
    const exit = agent.running() ? 'still running' : `exit ${JSON.stringify(await agent.exited)}`;
    throw new Error(`podlegs agent on ${node.name} did not start (${exit}; is ${lab.podlegsBin} being rebuilt?): ${(e as Error).message}`);
  }
  return agent;
}

/**
 * Warnings and errors an agent logged (JSON lines on its stderr), except one known, self-healing
 * race: a reconcile that read a segment just before a concurrent DEL removed it fails with ENODEV
 * ("reconcile failed ... ENODEV") and the next run is clean (reported against overlay/agent).
 */
export function agentProblems(agent: LabProcess): string[] {
  return agent.stderr().split('\n').filter((line) => /"level":"(warn|error)"/.test(line))
    .filter((line) => !/"message":"reconcile failed"/.test(line) || !/ENODEV/.test(line));
}

/**
 * A lab node's InternalIP in the fake API: a management NIC's address, deliberately not its
 * VTEP (multi-NIC nodes), so a test sees the agents flood to the VTEP each agent published.
 */
export const managementIp = (n: LabNode): string => `10.250.0.${n.index}`;

interface IpLink { ifname: string; address?: string; operstate?: string; addr_info?: { family: string; local: string; prefixlen: number }[] }
interface FdbEntry { mac: string; dst?: string; ifname?: string }

/** `ip -j <args>` inside netns, parsed. */
export async function ipJson<T>(lab: Lab, netns: string, args: string): Promise<T> {
  const r = await lab.sh(`ip -j ${args}`, { netns });
  return JSON.parse(r.stdout.trim() || '[]') as T;
}

export async function linkNames(lab: Lab, netns: string): Promise<string[]> {
  return (await ipJson<IpLink[]>(lab, netns, 'link')).map((l) => l.ifname).sort();
}

export async function macOf(lab: Lab, netns: string, ifname: string): Promise<string> {
  const [l] = await ipJson<IpLink[]>(lab, netns, `link show dev ${ifname}`);
  if (!l?.address) throw new Error(`no MAC for ${ifname} in ${netns}`);
  return l.address;
}

/** IPv4 addresses (without prefix) on ifname in netns; [] when the link does not exist. */
export async function addrsOf(lab: Lab, netns: string, ifname: string): Promise<string[]> {
  const r = await lab.sh(`ip -j -4 addr show dev ${ifname}`, { netns, allowFail: true });
  if (r.code !== 0) return [];
  const links = JSON.parse(r.stdout.trim() || '[]') as IpLink[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
}

/**
 * Remote VTEPs in the flood list of plvx<vni> on node (its all-zero FDB entries), sorted;
 * undefined when the node has no segment for that VNI.
 */
export async function floodDsts(lab: Lab, node: LabNode, vni: number): Promise<string[] | undefined> {
  const r = await lab.sh(`bridge -j fdb show dev plvx${vni}`, { netns: node.nsName, allowFail: true });
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return undefined;
    throw new Error(`bridge fdb show dev plvx${vni} on ${node.name}: ${r.stderr}`);
  }
  const entries = JSON.parse(r.stdout.trim() || '[]') as FdbEntry[];
  return entries.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst ?? '?').sort();
}

/** Root-namespace links, addresses and routes (what a lab must never change), sorted. */
export function rootSnapshot(): string[] {
  const ip = <T>(args: string[]): T => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' }) || '[]') as T;
  const links = ip<IpLink[]>(['addr']).flatMap((l) =>
    [`link ${l.ifname}`, ...(l.addr_info ?? []).map((a) => `addr ${l.ifname} ${a.local}/${a.prefixlen}`)]);
  const routes = ip<{ dst: string; gateway?: string; dev?: string; table?: string }[]>(['route', 'show', 'table', 'all'])
    .map((r) => `route ${r.table ?? 'main'} ${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`);
  return [...links, ...routes].sort();
}

/** Every file below dir (recursively); [] when dir does not exist. */
export function filesUnder(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.flatMap((n) => {
    const p = path.join(dir, n);
    try { return statSync(p).isDirectory() ? filesUnder(p) : [p]; } catch { return []; }
  });
}

/**
 * What podlegs (or ptp) left behind: links other than lo/ul0 on the nodes, any file in the
 * registry, any attachment state or lock file in a node's stateDir. [] when clean.
 */
export async function nodeLeftovers(lab: Lab): Promise<string[]> {
  const out: string[] = [];
  for (const node of lab.nodes) {
    for (const l of await linkNames(lab, node.nsName)) if (l !== 'lo' && l !== 'ul0') out.push(`${node.name}: link ${l}`);
    // node.lock stays by design: the flock(2) lock is never unlinked (an unlinked lock file lets two holders in).
    for (const f of filesUnder(path.join(node.dir, 'state'))) if (path.basename(f) !== 'node.lock') out.push(`${node.name}: state file ${f}`);
  }
  for (const f of filesUnder(lab.registryDir)) out.push(`registry file ${f}`);
  return out;
}

// ---------------------------------------------------------------- keepalived

export interface VrrpOptions {
  routerId: string;
  vrid: number;
  priority: number;
  vip: string; // with prefix, e.g. 10.100.0.100/24
  iface?: string; // default net1
  advertInt?: number; // seconds; default 1
}

/** keepalived.conf for one VRRP instance on a podlegs leg (VRRPv2, multicast adverts, no auth). */
export function keepalivedConf(o: VrrpOptions): string {
  const iface = o.iface ?? 'net1';
  return `global_defs {
  router_id ${o.routerId}
  # gratuitous ARPs on becoming master: at once and again 1 s later
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
  vrrp_garp_master_refresh 0
}
vrrp_instance VI_${o.vrid} {
  state BACKUP
  interface ${iface}
  virtual_router_id ${o.vrid}
  priority ${o.priority}
  advert_int ${o.advertInt ?? 1}
  virtual_ipaddress {
    ${o.vip} dev ${iface}
  }
}
`;
}

export interface Keepalived { proc: LabProcess; pidFile: string; vrrpPidFile: string; confFile: string; pod: LabPod }

/**
 * Starts keepalived (VRRP only, foreground, console log) in the pod's netns with its own pid
 * files under lab.dir. `-R`: the parent does not respawn a VRRP child that dies (a crash stays a crash).
 */
export async function startKeepalived(lab: Lab, pod: LabPod, o: VrrpOptions): Promise<Keepalived> {
  const base = path.join(lab.dir, `keepalived-${pod.name}`);
  const confFile = `${base}.conf`;
  const pidFile = `${base}.pid`;
  const vrrpPidFile = `${base}-vrrp.pid`;
  writeFileSync(confFile, keepalivedConf(o));
  const proc = lab.spawn(pod.netns, ['keepalived', '-n', '-l', '-D', '-P', '-R', '-f', confFile, '-p', pidFile, '-r', vrrpPidFile]);
  await proc.waitFor(/Entering BACKUP STATE|Entering MASTER STATE/, SEEN_MS);
  return { proc, pidFile, vrrpPidFile, confFile, pod };
}

/** PID of keepalived's VRRP child (the process that speaks VRRP and owns the VIP). */
export async function vrrpPid(k: Keepalived): Promise<number> {
  const { readFileSync } = await import('node:fs');
  return waitUntil(`VRRP pid file ${k.vrrpPidFile}`, async () => Number(readFileSync(k.vrrpPidFile, 'utf8').trim()) || 0, SEEN_MS, 50);
}

/**
 * Crashes keepalived: SIGKILL to the VRRP child, then to the parent (both by PID). No priority-0
 * advert, no VIP removal: the VIP stays configured on the dead master's leg, as after a real crash.
 * Returns the moment of the kill (ms since epoch, as Date.now()) and the PIDs killed.
 */
export async function crashKeepalived(k: Keepalived): Promise<{ at: number; vrrpPid: number; parentPid: number }> {
  const child = await vrrpPid(k);
  const at = Date.now();
  process.kill(child, 'SIGKILL');
  process.kill(k.proc.pid, 'SIGKILL');
  await k.proc.exited;
  return { at, vrrpPid: child, parentPid: k.proc.pid };
}

/** The pod (of those given) whose leg carries the VIP; undefined when none. Several → error. */
export async function vipOwner(lab: Lab, pods: LabPod[], vip: string, iface = 'net1'): Promise<LabPod | undefined> {
  const ip = vip.split('/')[0];
  const owners: LabPod[] = [];
  for (const p of pods) if ((await addrsOf(lab, p.nsName, iface)).includes(ip)) owners.push(p);
  if (owners.length > 1) throw new Error(`VIP ${ip} on several pods: ${owners.map((p) => p.name).join(', ')}`);
  return owners[0];
}

/** One ping from the pod; true on a reply within timeoutS. */
export async function pingOnce(lab: Lab, pod: LabPod, ip: string, timeoutS = 0.3): Promise<boolean> {
  return (await lab.sh(`ping -n -c 1 -W ${timeoutS} ${ip}`, { netns: pod.nsName, allowFail: true })).code === 0;
}

/** The MAC the pod's neighbour table holds for ip (undefined when none or FAILED). */
export async function neighMac(lab: Lab, pod: LabPod, ip: string, iface = 'net1'): Promise<string | undefined> {
  const r = await ipJson<{ lladdr?: string; state?: string[] }[]>(lab, pod.nsName, `neigh show ${ip} dev ${iface}`);
  return r[0]?.lladdr;
}

export interface FailoverTimes {
  /** kill → the backup has the VIP on its leg */
  vipMs: number;
  /** kill → the client's ARP entry for the VIP points at the backup (gratuitous ARP) and a ping succeeds */
  clientMs: number;
  /** pings from the client to the VIP (every 100 ms, 200 ms timeout, from the kill until recovery) that got no reply */
  lostPings: number;
  sentPings: number;
}

/**
 * Measures a failover after crash(): polls the backup's leg for the VIP and, in parallel, pings
 * the VIP from the client every 100 ms until a reply arrives while the client's neighbour entry
 * for the VIP is the backup's MAC. Times are from t0 (the moment of the kill).
 */
export async function measureFailover(lab: Lab, t0: number, backup: LabPod, client: LabPod, vip: string,
  timeoutMs = CONVERGE_MS, iface = 'net1'): Promise<FailoverTimes> {
  const ip = vip.split('/')[0];
  const backupMac = await macOf(lab, backup.nsName, iface);
  const deadline = t0 + timeoutMs;
  const vipTask = (async (): Promise<number> => {
    while (Date.now() < deadline) {
      if ((await addrsOf(lab, backup.nsName, iface)).includes(ip)) return Date.now() - t0;
      await sleep(20);
    }
    throw new Error(`backup ${backup.name} did not get VIP ${ip} within ${timeoutMs} ms`);
  })();
  let sent = 0;
  let lost = 0;
  const clientTask = (async (): Promise<number> => {
    while (Date.now() < deadline) {
      const start = Date.now();
      sent++;
      const ok = await pingOnce(lab, client, ip, 0.2);
      if (!ok) lost++;
      if (ok && (await neighMac(lab, client, ip, iface)) === backupMac) return Date.now() - t0;
      await sleep(Math.max(0, 100 - (Date.now() - start)));
    }
    throw new Error(`client ${client.name} did not reach VIP ${ip} at ${backup.name} (${backupMac}) within ${timeoutMs} ms`);
  })();
  const [vipMs, clientMs] = await Promise.all([vipTask, clientTask]);
  return { vipMs, clientMs, lostPings: lost, sentPings: sent };
}

// ---------------------------------------------------------------- captures and multicast

/** tcpdump on a pod's interface (line-buffered, numeric, with link-level headers), running once it listens. */
export async function capture(lab: Lab, pod: LabPod, iface: string, filter: string): Promise<LabProcess> {
  const p = lab.spawn(pod.netns, ['tcpdump', '-l', '-n', '-e', '-i', iface, filter]);
  await p.waitFor(`listening on ${iface}`, SEEN_MS);
  return p;
}

const PY = '/usr/bin/python3';

const MCAST_RECV = `
import socket, struct, sys
iface, group, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
s.bind((group, port))
mreqn = struct.pack('4s4si', socket.inet_aton(group), socket.inet_aton('0.0.0.0'), socket.if_nametoindex(iface))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
print('joined', group, 'on', iface, flush=True)
s.settimeout(secs)
try:
    while True:
        data, src = s.recvfrom(2048)
        print('got', data.decode(), 'from', src[0], flush=True)
except socket.timeout:
    print('done', flush=True)
`;

const MCAST_SEND = `
import socket, struct, sys, time
iface, group, port, msg, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack('4s4si', socket.inet_aton(group), socket.inet_aton('0.0.0.0'), socket.if_nametoindex(iface)))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
for i in range(count):
    s.sendto(('%s-%d' % (msg, i)).encode(), (group, port))
    time.sleep(0.1)
print('sent', count, flush=True)
`;

/** A UDP multicast listener joined to group on the pod's iface (SO_BINDTODEVICE); prints "got <msg> from <ip>". */
export async function mcastListener(lab: Lab, pod: LabPod, iface: string, group: string, port: number, secs = 30): Promise<LabProcess> {
  const p = lab.spawn(pod.netns, [PY, '-c', MCAST_RECV, iface, group, String(port), String(secs)]);
  await p.waitFor('joined', SEEN_MS);
  return p;
}

/** Sends count datagrams "<msg>-<i>" to group:port out of the pod's iface (TTL 1, no loopback). */
export async function mcastSend(lab: Lab, pod: LabPod, iface: string, group: string, port: number, msg: string, count = 3): Promise<void> {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  await lab.sh(`${PY} -c ${q(MCAST_SEND)} ${iface} ${group} ${port} ${q(msg)} ${count}`, { netns: pod.nsName });
}

/**
 * CHECK of the podlegs entry of a pod's chain, invoked exactly as libcni would invoke it (the
 * cached ADD result as prevResult). The whole chain's CHECK cannot be used in the lab: Debian's
 * ptp fails CHECK whenever the cached result holds IPs of other interfaces ("Failed to match
 * addr <leg ip> on interface eth0"), a limitation of the reference plugin.
 */
export async function checkPodlegs(lab: Lab, p: NfPod): Promise<CniOutcome> {
  const entry = p.conf.plugins.find((x) => x.type === 'podlegs');
  const prev = lab.cachedResult(p.pod, p.conf.name);
  if (!entry || !prev) throw new Error(`${p.pod.name}: no podlegs entry or no cached ADD result`);
  return lab.exec(p.pod.node, 'podlegs', {
    command: 'CHECK', pod: p.pod, conf: { ...entry, name: p.conf.name, cniVersion: p.conf.cniVersion, prevResult: prev },
  });
}

/** Destroys the lab, then throws if anything of it is left or the root namespace changed. */
export async function destroyChecked(lab: Lab | undefined, root: string[]): Promise<void> {
  const prefix = lab?.prefix;
  try {
    await lab?.destroy();
  } finally {
    const leaks = prefix ? await leakCheck(prefix) : [];
    const now = rootSnapshot(); // nothing may be added to (or left in) the root namespace
    const changed = [...now.filter((x) => !root.includes(x)), ...root.filter((x) => !now.includes(x)).map((x) => `missing: ${x}`)];
    if (leaks.length || changed.length) throw new Error(`lab left things behind: ${JSON.stringify({ leaks, rootChanged: changed })}`);
  }
}
