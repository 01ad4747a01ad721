/**
 * The VLAN-trunk suite. Needs a kernel with 802.1Q devices, the tc clsact qdisc and the tc BPF
 * classifier: run by test/vm/run-trunk-suite.sh natively when the host kernel has them, else
 * inside a QEMU VM booted with Debian's kernel (test/vm/run-in-vm.sh). Skips itself elsewhere.
 *
 * One 3-node lab (namespaces only, TEST-NET-1 underlay, 10.x inside pods), [ptp, podlegs] pods:
 *   nf1     n1  trunk net1: VLAN 10 -> a (VNI 100), VLAN 20 -> b (VNI 200), native m (VNI 300), 10.30.0.1
 *               inside: net1.10 10.100.0.1, net1.20 10.200.0.1, ip_forward on (router on a stick)
 *   nf2     n2  trunk net1: VLAN 10 -> a, VLAN 20 -> b, no native; net1.10 10.100.0.2 (VRRP peer of nf1)
 *   client  n2  access leg on a: 10.100.0.10, route to 10.200.0.0/24 via nf1
 *   server  n3  access leg on b: 10.200.0.10, route to 10.100.0.0/24 via nf1
 *   mgmt    n3  access leg on m: 10.30.0.10
 *   acc     n1  access leg on a: 10.100.0.20 (bench: the access-leg path n1 -> n2)
 *   srvc    n3  access leg on c: 10.40.0.10 (for the live VLAN edit: VLAN 30 -> c on nf1's trunk)
 * An agent per node keeps the flood lists current; its config carries NETWORKS, so a SIGHUP
 * after editing them applies trunk VLAN edits to running trunks.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CniConflist, Lab, LabNode, LabPod, LabProcess, leakCheck } from '../lab/lab';
import { CONVERGE_MS, filesUnder, SEEN_MS, sleep, waitUntil } from '../lab/nf';

jest.setTimeout(300_000);

/** Can this kernel make what a trunk leg needs? (VLAN device, clsact, tc bpf; in a throw-away netns.) */
function kernelHasTrunkFeatures(): boolean {
  if (process.getuid?.() !== 0) return false;
  const ns = `pltk${process.pid}`;
  const r = spawnSync('sh', ['-c', `ip netns add ${ns} || exit 1
    ip -n ${ns} link add plva type veth peer name plvb &&
    ip -n ${ns} link add link plva name plva.5 type vlan id 5 &&
    tc -n ${ns} qdisc add dev plva clsact &&
    tc -n ${ns} filter add dev plva ingress bpf da bytecode '1,6 0 0 0'
    r=$?; ip netns del ${ns}; exit $r`], { stdio: 'ignore' });
  return r.status === 0;
}
const supported = kernelHasTrunkFeatures();
const suite = supported ? describe : describe.skip;
if (!supported) process.stderr.write('trunk suite skipped: this kernel lacks 8021q / clsact / cls_bpf (test/vm/run-trunk-suite.sh runs it in a VM)\n');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NETWORKS: Json = {
  a: { vni: 100 },
  b: { vni: 200 },
  m: { vni: 300 },
  c: { vni: 400 },
  w: { vni: 501 }, x: { vni: 502 }, y: { vni: 503 }, z: { vni: 504 },
  'trunk-abm': { trunk: { vlans: [{ vid: 10, network: 'a' }, { vid: 20, network: 'b' }], nativeNetwork: 'm' } },
  'trunk-ab': { trunk: { vlans: [{ vid: 10, network: 'a' }, { vid: 20, network: 'b' }] } },
  trunk4: { trunk: { vlans: [{ vid: 101, network: 'w' }, { vid: 102, network: 'x' }, { vid: 103, network: 'y' }, { vid: 104, network: 'z' }] } },
};

let lab: Lab;
const agents: LabProcess[] = [];
const figures: Json = {};

function nodeConf(node: LabNode): Json {
  return {
    underlay: { interface: 'ul0' },
    registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(node.dir, 'state'),
    log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
  };
}
const podlegsEntry = (node: LabNode, legs: Json[]): Json => ({ type: 'podlegs', ...nodeConf(node), networks: NETWORKS, legs });
const conflist = (node: LabNode, legs: Json[]): CniConflist => ({ cniVersion: '1.1.0', name: 'nf', plugins: [lab.ptpPlugin(node), podlegsEntry(node, legs) as never] });

interface Pod { pod: LabPod; conf: CniConflist; result: Json }
const pods: Record<string, Pod> = {};

async function addPod(node: LabNode, name: string, legs: Json[]): Promise<Pod> {
  const pod = await lab.addPod(node, name);
  const conf = conflist(node, legs);
  const r = await lab.chain(pod, 'ADD', conf);
  if (r.code !== 0) throw new Error(`ADD ${name}: ${r.stdout}${r.stderr}`);
  pods[name] = { pod, conf, result: r.json as Json };
  return pods[name];
}

const sh = async (p: Pod | LabNode, cmd: string, allowFail = false): Promise<{ code: number; stdout: string; stderr: string }> =>
  lab.sh(cmd, { netns: 'pod' in p ? p.pod.nsName : p.nsName, allowFail });

const podlegsLinks = async (node: LabNode): Promise<string[]> =>
  (JSON.parse((await sh(node, 'ip -j link')).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith('pl')).sort();


/** tcpdump on one interface of a pod, for "this frame did (not) show up here". */
async function capture(p: Pod, iface: string): Promise<LabProcess> {
  const t = lab.spawn(p.pod.netns, ['tcpdump', '-l', '-n', '-e', '-i', iface, 'arp or icmp']);
  await t.waitFor(`listening on ${iface}`, 20_000);
  return t;
}
const saw = (t: LabProcess, needle: string): boolean => (t.stdout() + t.stderr()).includes(needle);

async function qdiscDrops(node: LabNode, dev: string): Promise<number> {
  const out = (await sh(node, `tc -s qdisc show dev ${dev}`)).stdout;
  const m = /qdisc clsact[^]*?dropped (\d+)/.exec(out);
  return m ? Number(m[1]) : 0;
}

const stateOf = (node: LabNode, p: Pod): Json => JSON.parse(readFileSync(path.join(node.dir, 'state', 'attachments', `${p.pod.containerId}_eth0.json`), 'utf8'));

suite('VLAN trunk legs under a full kernel', () => {
  let n1: LabNode;
  let n2: LabNode;
  let n3: LabNode;
  const dumps: Record<string, LabProcess> = {};

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 3 });
    [n1, n2, n3] = lab.nodes;
    for (const node of lab.nodes) {
      const file = path.join(node.dir, 'agent.json');
      writeFileSync(file, JSON.stringify({ ...nodeConf(node), networks: NETWORKS, log: { level: 'info' }, agent: { metricsAddress: '127.0.0.1:9750', socket: node.agentSocket } }));
      agents.push(lab.spawn(node.netns, [lab.podlegsBin, 'agent', '--config', file], { env: { NODE_NAME: node.name, PODLEGS_RESYNC_MS: '2000' } }));
    }
    await Promise.all(agents.map((a) => a.waitFor('agent started', 60_000)));
  }, 120_000);

  afterAll(async () => {
    if (Object.keys(figures).length) process.stdout.write(`\nPODLEGS-TRUNK-FIGURES ${JSON.stringify(figures)}\n`);
    const prefix = lab?.prefix;
    await lab?.destroy();
    if (prefix) expect(await leakCheck(prefix)).toEqual([]);
  }, 120_000);

  test('STATUS with trunk networks passes here and leaves no probe behind', async () => {
    const o = await lab.exec(n1, 'podlegs', { command: 'STATUS', conf: { cniVersion: '1.1.0', name: 'nf', ...podlegsEntry(n1, []) } });
    expect([o.code, o.stdout]).toEqual([0, '']);
    expect(await podlegsLinks(n1)).toEqual([]);
  });

  test('ADD: one trunk leg per NF pod, access legs elsewhere; host side as designed', async () => {
    const t0 = Date.now();
    await addPod(n1, 'nf1', [{ network: 'trunk-abm', interface: 'net1', ips: ['10.30.0.1/24'] }]);
    figures.firstTrunkAddMs = Date.now() - t0;
    await addPod(n2, 'nf2', [{ network: 'trunk-ab', interface: 'net1' }]);
    await addPod(n2, 'client', [{ network: 'a', interface: 'net1', ips: ['10.100.0.10/24'] }]);
    await addPod(n3, 'server', [{ network: 'b', interface: 'net1', ips: ['10.200.0.10/24'] }]);
    await addPod(n3, 'mgmt', [{ network: 'm', interface: 'net1', ips: ['10.30.0.10/24'] }]);
    await addPod(n1, 'acc', [{ network: 'a', interface: 'net1', ips: ['10.100.0.20/24'] }]);

    // The result lists the trunk as one interface after ptp's, with the native address.
    const r = pods.nf1.result;
    expect(r.interfaces.map((i: Json) => i.name)).toEqual([expect.any(String), 'eth0', 'net1']);
    expect(r.ips.slice(-1)[0]).toMatchObject({ address: '10.30.0.1/24', interface: 2 });

    // Node side of nf1: veth into plbr300 (native), 8021q sub-interfaces into plbr100/plbr200, BPF filter.
    const st = stateOf(n1, pods.nf1).legs[0];
    const links = JSON.parse((await sh(n1, 'ip -j -d link')).stdout) as Json[];
    const by = (n: string): Json => links.find((l) => l.ifname === n)!;
    expect(by(st.hostIf).master).toBe('plbr300');
    for (const v of st.trunk.vlans) {
      expect(v.hostIf).toMatch(/^pl[0-9a-f]{8}v\d+$/);
      expect(by(v.hostIf)).toMatchObject({ link: st.hostIf, master: `plbr${v.vni}`, linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: v.vid } } });
    }
    const filter = (await sh(n1, `tc filter show dev ${st.hostIf} ingress`)).stdout;
    expect(filter).toMatch(/bpf .*direct-action/);
    // nf2 has no native network: its veth is no bridge port.
    const st2 = stateOf(n2, pods.nf2).legs[0];
    expect(JSON.parse((await sh(n2, `ip -j link show ${st2.hostIf}`)).stdout)[0].master).toBeUndefined();
    // Registry: one member per VLAN network (and the native one) with the trunk's pod-side MAC.
    const mac = r.interfaces[2].mac;
    const reg = filesUnder(lab.registryDir).filter((f) => f.includes(pods.nf1.pod.containerId)).map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(reg.map((m) => [m.vni, m.mac, m.owner.split('/').pop()]).sort()).toEqual([[100, mac, 'net1.10'], [200, mac, 'net1.20'], [300, mac, 'net1']]);
    // Flood lists: n1's VNI 100 reaches n2 (nf2, client), VNI 200 reaches n2 (nf2) and n3 (server).
    const flood = async (node: LabNode, vni: number): Promise<string[]> =>
      (JSON.parse((await sh(node, `bridge -j fdb show dev plvx${vni}`)).stdout) as Json[]).filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort();
    const want = [['192.0.2.12'], ['192.0.2.12', '192.0.2.13'], ['192.0.2.13']];
    let got: string[][] = [];
    await waitUntil('flood lists of n1', async () => JSON.stringify(got = [await flood(n1, 100), await flood(n1, 200), await flood(n1, 300)]) === JSON.stringify(want), CONVERGE_MS, 200)
      .catch(() => expect(got).toEqual(want));

    // Inside the NF pods: VLAN sub-interfaces, as an NF would make them.
    await sh(pods.nf1, `ip link add link net1 name net1.10 type vlan id 10 && ip link add link net1 name net1.20 type vlan id 20 &&
      ip addr add 10.100.0.1/24 dev net1.10 && ip addr add 10.200.0.1/24 dev net1.20 &&
      ip link set net1.10 up && ip link set net1.20 up && sysctl -qw net.ipv4.ip_forward=1`);
    await sh(pods.nf2, 'ip link add link net1 name net1.10 type vlan id 10 && ip addr add 10.100.0.2/24 dev net1.10 && ip link set net1.10 up');
    await sh(pods.client, 'ip route add 10.200.0.0/24 via 10.100.0.1 dev net1');
    await sh(pods.server, 'ip route add 10.100.0.0/24 via 10.200.0.1 dev net1');
    for (const [p, iface] of [[pods.nf1, 'net1'], [pods.nf2, 'net1'], [pods.client, 'net1'], [pods.server, 'net1'], [pods.mgmt, 'net1']] as const) {
      dumps[p.pod.name] = await capture(p, iface);
    }
  });

  test('(a) router on a stick: client (n2, a) and server (n3, b) talk only through nf1 (n1)', async () => {
    const counters = async (): Promise<number[]> => {
      const out = (await sh(pods.nf1, 'ip -s -j link show net1.10; ip -s -j link show net1.20')).stdout.trim().split('\n');
      return out.map((line) => (JSON.parse(line) as Json[])[0].stats64.rx.packets as number);
    };
    const before = await counters();
    const ping = await sh(pods.client, 'ping -n -c 3 -i 0.2 -W 2 10.200.0.10');
    expect(ping.stdout).toMatch(/3 received/);
    // The server answers with TTL 64; one router (nf1) on the way back makes it 63.
    expect(ping.stdout).toMatch(/from 10\.200\.0\.10: icmp_seq=\d+ ttl=63/);
    const after = await counters();
    expect(after[0] - before[0]).toBeGreaterThanOrEqual(3); // requests came in on VLAN 10
    expect(after[1] - before[1]).toBeGreaterThanOrEqual(3); // replies came in on VLAN 20
    // The client reaches 10.200.0.0/24 through nf1's MAC: the trunk's pod-side MAC.
    const neigh = JSON.parse((await sh(pods.client, 'ip -j neigh show 10.100.0.1 dev net1')).stdout)[0];
    expect(neigh.lladdr).toBe(pods.nf1.result.interfaces[2].mac);
    // No forwarding in nf1, no path.
    await sh(pods.nf1, 'sysctl -qw net.ipv4.ip_forward=0');
    expect((await sh(pods.client, 'ping -n -c 2 -i 0.2 -W 1 10.200.0.10', true)).code).not.toBe(0);
    await sh(pods.nf1, 'sysctl -qw net.ipv4.ip_forward=1');
    expect((await sh(pods.client, 'ping -n -c 1 -W 2 10.200.0.10', true)).code).toBe(0);
  });

  test('(b) an ARP broadcast on network a reaches VLAN 10 of the trunks, never network b or m', async () => {
    await sh(pods.client, 'arping -c 2 -W 0.3 -w 3 -i net1 10.100.0.99', true);
    await dumps.nf1.waitFor(/vlan 10, .*Request who-has 10\.100\.0\.99/, SEEN_MS);
    await dumps.nf2.waitFor(/vlan 10, .*Request who-has 10\.100\.0\.99/, SEEN_MS);
    await sleep(1000); // and over a further second: nowhere else
    expect(dumps.nf1.stdout()).not.toMatch(/vlan 20, .*10\.100\.0\.99/);
    expect(saw(dumps.server, '10.100.0.99')).toBe(false);
    expect(saw(dumps.mgmt, '10.100.0.99')).toBe(false);
    // And the other way: a broadcast on b reaches VLAN 20 only.
    await sh(pods.server, 'arping -c 2 -W 0.3 -w 3 -i net1 10.200.0.99', true);
    await dumps.nf1.waitFor(/vlan 20, .*Request who-has 10\.200\.0\.99/, SEEN_MS);
    await sleep(1000);
    expect(dumps.nf1.stdout()).not.toMatch(/vlan 10, .*10\.200\.0\.99/);
    expect(saw(dumps.client, '10.200.0.99') || saw(dumps.mgmt, '10.200.0.99')).toBe(false);
  });

  test('(c) unlisted tags are dropped; untagged frames go to the native network, or nowhere', async () => {
    const veth1 = stateOf(n1, pods.nf1).legs[0].hostIf;
    const veth2 = stateOf(n2, pods.nf2).legs[0].hostIf;
    const drops1 = await qdiscDrops(n1, veth1);
    const drops2 = await qdiscDrops(n2, veth2);
    // VLAN 30 is on neither trunk.
    for (const p of [pods.nf1, pods.nf2]) {
      const me = p === pods.nf1 ? 1 : 2;
      await sh(p, `ip link add link net1 name net1.30 type vlan id 30 && ip addr add 10.99.30.${me}/24 dev net1.30 && ip link set net1.30 up`);
      await sh(p, `arping -c 2 -W 0.3 -w 2 -i net1.30 10.99.30.99; ping -n -c 2 -i 0.2 -W 1 -I net1.30 10.99.30.${3 - me}`, true);
    }
    await sleep(1000);
    for (const d of ['client', 'server', 'mgmt']) expect(saw(dumps[d], '10.99.30.')).toBe(false);
    expect(dumps.nf2.stdout()).not.toMatch(/tell 10\.99\.30\.1,|10\.99\.30\.1 > /); // nf1's VLAN 30 never reached nf2
    expect(await qdiscDrops(n1, veth1)).toBeGreaterThanOrEqual(drops1 + 2); // dropped by the filter on the host veth
    expect(await qdiscDrops(n2, veth2)).toBeGreaterThanOrEqual(drops2 + 2);
    // Untagged from nf1: its native network m (mgmt answers ARP and ping).
    expect((await sh(pods.nf1, 'arping -c 1 -w 30 -i net1 10.30.0.10', true)).code).toBe(0);
    expect((await sh(pods.nf1, 'ping -n -c 1 -W 2 10.30.0.10', true)).code).toBe(0);
    expect(saw(dumps.client, '10.30.0.') || saw(dumps.server, '10.30.0.')).toBe(false);
    // Untagged from nf2 (no native network): dropped, neither mgmt nor node n2's own stack answers.
    await sh(pods.nf2, 'ip addr add 10.30.0.2/24 dev net1');
    const d2 = await qdiscDrops(n2, veth2);
    expect((await sh(pods.nf2, 'arping -c 2 -W 0.3 -w 2 -i net1 10.30.0.10', true)).code).not.toBe(0);
    expect((await sh(pods.nf2, 'arping -c 2 -W 0.3 -w 2 -i net1 192.0.2.12', true)).code).not.toBe(0);
    await sleep(500);
    expect(saw(dumps.mgmt, '10.30.0.2')).toBe(false);
    expect(await qdiscDrops(n2, veth2)).toBeGreaterThanOrEqual(d2 + 4);
    for (const p of [pods.nf1, pods.nf2]) await sh(p, 'ip link del net1.30');
    await sh(pods.nf2, 'ip addr del 10.30.0.2/24 dev net1');
  });

  test('(d) keepalived VRRP between nf1 (n1) and nf2 (n2) over VLAN 10 fails over after a crash', async () => {
    const vip = '10.100.0.254';
    const start = async (p: Pod, prio: number): Promise<{ proc: LabProcess; vrrpPid: string }> => {
      const base = path.join(lab.dir, `keepalived-${p.pod.name}`);
      writeFileSync(`${base}.conf`, `global_defs {
  router_id ${p.pod.name}
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
}
vrrp_instance VI_10 {
  state BACKUP
  interface net1.10
  virtual_router_id 10
  priority ${prio}
  advert_int 1
  virtual_ipaddress {
    ${vip}/24 dev net1.10
  }
}
`);
      const proc = lab.spawn(p.pod.netns, ['keepalived', '-n', '-l', '-D', '-P', '-R', '-f', `${base}.conf`, '-p', `${base}.pid`, '-r', `${base}-vrrp.pid`]);
      await proc.waitFor(/Entering (BACKUP|MASTER) STATE/, 30_000);
      return { proc, vrrpPid: `${base}-vrrp.pid` };
    };
    const hasVip = async (p: Pod): Promise<boolean> => (await sh(p, 'ip -4 -o addr show dev net1.10')).stdout.includes(`${vip}/24`);
    const k1 = await start(pods.nf1, 150);
    const k2 = await start(pods.nf2, 100);
    await waitUntil('nf1 to become VRRP master (VIP on its net1.10)', () => hasVip(pods.nf1), CONVERGE_MS, 200);
    expect(await hasVip(pods.nf2)).toBe(false);
    expect((await sh(pods.client, `ping -n -c 1 -W 2 ${vip}`, true)).code).toBe(0);
    const neighOf = async (): Promise<string | undefined> => JSON.parse((await sh(pods.client, `ip -j neigh show ${vip} dev net1`)).stdout)[0]?.lladdr;
    expect(await neighOf()).toBe(pods.nf1.result.interfaces[2].mac);

    // Crash the master: SIGKILL its VRRP process and its parent (no goodbye advert).
    const t0 = Date.now();
    process.kill(Number(readFileSync(k1.vrrpPid, 'utf8').trim()), 'SIGKILL');
    process.kill(k1.proc.pid, 'SIGKILL');
    await k1.proc.exited;
    let vipMs = 0;
    let clientMs = 0;
    while (Date.now() - t0 < CONVERGE_MS && !clientMs) {
      if (!vipMs && (await hasVip(pods.nf2))) vipMs = Date.now() - t0;
      if (vipMs && (await sh(pods.client, `ping -n -c 1 -W 1 ${vip}`, true)).code === 0 && (await neighOf()) === pods.nf2.result.interfaces[2].mac) clientMs = Date.now() - t0;
      else await sleep(100);
    }
    if (!clientMs) throw new Error(`no failover within ${CONVERGE_MS} ms: VIP on nf2 ${vipMs ? `after ${vipMs} ms` : 'never'}, client never served by nf2`);
    figures.vrrpFailover = { vipMs, clientMs };
    await k2.proc.kill();
  });

  test('(e) live VLAN edit: nf1\'s trunk gains VLAN 30 (routed to c), loses VLAN 20 (dropped) and gets it back; a 10 ms ping on VLAN 10 loses nothing', async () => {
    for (const d of Object.values(dumps)) await d.kill(); // (b)/(c) are done with them; they would print every ping below
    const agentFile = path.join(n1.dir, 'agent.json');
    const agent1 = agents[0];
    const trunkOf = (): Json => stateOf(n1, pods.nf1).legs[0];
    const vlansNow = (): string => trunkOf().trunk.vlans.map((v: Json) => `${v.vid}:${v.network}`).join(',');
    // Edit the agent's config (the node's static networks) and SIGHUP it; done when the state file says so.
    // The agent's own account (JSON log lines on its stderr): SIGHUP seen, and the edit applied.
    const logLines = (msg: string): Json[] => (agent1.stdout() + agent1.stderr()).split('\n').filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Json).filter((l) => String(l.message).startsWith(msg));
    const edit = async (vlans: Json[]): Promise<{ appliedMs: number; agentMs: number; hupToDoneMs: number }> => {
      const cfg = JSON.parse(readFileSync(agentFile, 'utf8')) as Json;
      cfg.networks['trunk-abm'].trunk.vlans = vlans;
      writeFileSync(agentFile, JSON.stringify(cfg));
      const want = vlans.map((v) => `${v.vid}:${v.network}`).join(',');
      const seen = logLines('trunk VLANs changed').length;
      const t0 = Date.now();
      process.kill(agent1.pid, 'SIGHUP');
      await waitUntil(`n1's agent to apply VLANs ${want} to nf1's trunk`, () => vlansNow() === want, CONVERGE_MS, 20);
      const appliedMs = Date.now() - t0; // SIGHUP sent → the state file lists exactly the new VLANs
      await waitUntil('the agent to log the edit', () => logLines('trunk VLANs changed').length > seen, CONVERGE_MS, 20);
      const done = logLines('trunk VLANs changed').pop()!;
      const hup = logLines('config reloaded on SIGHUP').pop()!;
      return { appliedMs, agentMs: done.durationMs, hupToDoneMs: Date.parse(done.timestamp) - Date.parse(hup.timestamp) };
    };
    const veth = trunkOf().hostIf;
    const subIf = (vid: number): string => `pl${veth.slice(2, 10)}v${vid}`;
    const filters = async (): Promise<string[]> => (await sh(n1, `tc filter show dev ${veth} ingress`)).stdout.split('\n').filter((l) => /^filter .*bpf.*handle/.test(l));
    const srvc = await addPod(n3, 'srvc', [{ network: 'c', interface: 'net1', ips: ['10.40.0.10/24'] }]);
    await sh(srvc, 'ip route add 10.100.0.0/24 via 10.40.0.1 dev net1');
    await sh(pods.client, 'ip route add 10.40.0.0/24 via 10.100.0.1 dev net1');
    await sh(pods.nf1, 'ip link add link net1 name net1.30 type vlan id 30 && ip addr add 10.40.0.1/24 dev net1.30 && ip link set net1.30 up');
    expect((await sh(pods.client, 'ping -n -c 1 -W 1 10.40.0.10', true)).code).not.toBe(0); // VLAN 30 not on the trunk yet
    expect(await filters()).toEqual([expect.stringMatching(/pref 1 bpf chain 0 handle 0x1 /)]);

    // The 10 ms ping over VLAN 10 (client on n2 -> nf1's net1.10 on n1) runs through both edits.
    const ping = lab.spawn(pods.client.pod.netns, ['ping', '-n', '-q', '-i', '0.01', '-c', '4000', '-w', '150', '10.100.0.1']);
    await sleep(1000);

    const e1 = await edit([{ vid: 10, network: 'a' }, { vid: 30, network: 'c' }]);
    const t30 = Date.now();
    await waitUntil('client -> srvc routed by nf1 over VLAN 30', async () => (await sh(pods.client, 'ping -n -c 1 -W 1 10.40.0.10', true)).code === 0, CONVERGE_MS, 100);
    const routedMs = e1.appliedMs + (Date.now() - t30);
    expect((await sh(pods.client, 'ping -n -c 2 -i 0.2 -W 2 10.40.0.10')).stdout).toMatch(/from 10\.40\.0\.10: icmp_seq=\d+ ttl=63/);
    // VLAN 20 is gone on n1: no sub-interface, no segment left without ports, no member; its frames are dropped.
    const links = await podlegsLinks(n1);
    expect(links).toEqual(expect.arrayContaining([subIf(10), subIf(30), 'plbr400', 'plvx400']));
    expect(links).not.toContain(subIf(20));
    expect(links.filter((l) => /^pl(br|vx)200$/.test(l))).toEqual([]);
    const reg = filesUnder(lab.registryDir).filter((f) => f.includes(pods.nf1.pod.containerId)).map((f) => JSON.parse(readFileSync(f, 'utf8')));
    expect(reg.map((m) => [m.vni, m.owner.split('/').pop()]).sort()).toEqual([[100, 'net1.10'], [300, 'net1'], [400, 'net1.30']]);
    const drops = await qdiscDrops(n1, veth);
    expect((await sh(pods.nf1, 'ping -n -c 2 -i 0.2 -W 1 10.200.0.10', true)).code).not.toBe(0);
    expect(await qdiscDrops(n1, veth)).toBeGreaterThanOrEqual(drops + 2);
    // The filter was replaced in place: still exactly one, same pref and handle.
    expect(await filters()).toEqual([expect.stringMatching(/pref 1 bpf chain 0 handle 0x1 /)]);

    // And back: VLAN 20 returns (server reachable over it again), VLAN 30 and segment 400 leave n1.
    const e2 = await edit([{ vid: 10, network: 'a' }, { vid: 20, network: 'b' }]);
    await waitUntil('nf1 -> server over VLAN 20 again', async () => (await sh(pods.nf1, 'ping -n -c 1 -W 1 10.200.0.10', true)).code === 0, CONVERGE_MS, 100);
    expect((await sh(pods.client, 'ping -n -c 1 -W 1 10.40.0.10', true)).code).not.toBe(0);
    expect((await podlegsLinks(n1)).filter((l) => l === subIf(30) || /^pl(br|vx)400$/.test(l))).toEqual([]);

    expect(ping.running()).toBe(true); // the ping covered both edits
    await ping.exited;
    const stats = /(\d+) packets transmitted, (\d+) received/.exec(ping.stdout());
    expect(stats).not.toBeNull();
    const [sent, got] = [Number(stats![1]), Number(stats![2])];
    figures.liveVlanEdit = { add30remove20: e1, add20remove30: e2, vlan30RoutedMs: routedMs, vlan10Ping: { intervalMs: 10, sent, received: got } };
    expect([sent, got]).toEqual([4000, 4000]);

    expect((await lab.chain(srvc.pod, 'DEL', srvc.conf)).code).toBe(0);
    delete pods.srvc;
    await sh(pods.client, 'ip route del 10.40.0.0/24');
    await sh(pods.nf1, 'ip link del net1.30');
  });

  test('(f) CHECK passes, sees a removed VLAN sub-interface, DEL and GC leave nothing behind', async () => {
    // podlegs' own CHECK with the chain's result as prevResult (ptp's CHECK would refuse the
    // legs' addresses: it expects every address of the result on its eth0).
    const check = (p: Pod, entry: Json = p.conf.plugins[1]): Promise<{ code: number; stdout: string; json?: unknown }> =>
      lab.exec(p.pod.node, 'podlegs', { command: 'CHECK', pod: p.pod, conf: { cniVersion: '1.1.0', name: 'nf', ...entry, prevResult: p.result } });
    for (const p of ['nf1', 'nf2', 'client']) {
      const o = await check(pods[p]);
      expect([p, o.code, o.stdout]).toEqual([p, 0, '']);
    }
    // Sabotage: VLAN 20 of nf1's trunk disappears on the node.
    const st = stateOf(n1, pods.nf1).legs[0];
    const v20 = st.trunk.vlans.find((v: Json) => v.vid === 20).hostIf;
    await sh(n1, `ip link del ${v20}`);
    const bad = await check(pods.nf1);
    expect(bad.json).toMatchObject({ code: 104, msg: expect.stringMatching(/VLAN 20: sub-interface .* is missing/) });
    // CHECK with a different VLAN set than ADD attached fails too.
    const other = conflist(n1, [{ network: 'trunk-abm', interface: 'net1', ips: ['10.30.0.1/24'] }]);
    (other.plugins[1] as Json).networks = { ...NETWORKS, 'trunk-abm': { trunk: { vlans: [{ vid: 10, network: 'a' }], nativeNetwork: 'm' } } };
    const drift = await check(pods.nf1, other.plugins[1]);
    expect(drift.json).toMatchObject({ code: 104, msg: expect.stringMatching(/the configuration says 10:a/) });

    // GC: a trunk pod whose runtime forgot it (netns gone, no DEL).
    const lost = await addPod(n3, 'lost', [{ network: 'trunk-ab', interface: 'net1' }]);
    expect((await podlegsLinks(n3)).filter((l) => /v(10|20)$/.test(l))).toHaveLength(2);
    await lab.removePod(lost.pod);
    const valid = ['server', 'mgmt'].map((p) => ({ containerID: pods[p].pod.containerId, ifname: 'eth0' }));
    const gc = await lab.exec(n3, 'podlegs', { command: 'GC', conf: { cniVersion: '1.1.0', name: 'nf', ...podlegsEntry(n3, []), 'cni.dev/valid-attachments': valid } });
    expect([gc.code, gc.stdout]).toEqual([0, '']);
    const left = await podlegsLinks(n3);
    expect(left.filter((l) => /^pl(br|vx)/.test(l))).toEqual(['plbr200', 'plbr300', 'plvx200', 'plvx300']);
    expect(left.filter((l) => !/^pl(br|vx)/.test(l)).map((l) => /^pl[0-9a-f]{12}$/.test(l))).toEqual([true, true]); // server's and mgmt's veths
    expect(filesUnder(lab.registryDir).some((f) => f.includes(lost.pod.containerId))).toBe(false);
    delete pods.lost;

    // DEL everything (twice for nf1), then nothing of podlegs is left on any node.
    for (const p of Object.values(pods)) {
      const o = await lab.chain(p.pod, 'DEL', p.conf);
      expect([p.pod.name, o.code]).toEqual([p.pod.name, 0]);
    }
    const again = await lab.exec(n1, 'podlegs', { command: 'DEL', pod: pods.nf1.pod, conf: { cniVersion: '1.1.0', name: 'nf', ...pods.nf1.conf.plugins[1] } });
    expect(again.code).toBe(0);
    for (const node of lab.nodes) {
      expect([node.name, await podlegsLinks(node)]).toEqual([node.name, []]);
      expect(filesUnder(path.join(node.dir, 'state', 'attachments'))).toEqual([]);
    }
    expect(filesUnder(lab.registryDir)).toEqual([]);
    for (const p of Object.values(pods)) expect((await sh(p, 'ip -o link')).stdout).not.toMatch(/net1/);
  });

  test('bench: iperf3 through a trunk VLAN vs an access leg (n1 -> n2), ADD of a 4-VLAN trunk vs 4 access legs', async () => {
    // Fresh pods for the throughput part: the trunk pod's VLAN 10 and an access leg, both on n1, to a server on n2.
    const srv = await addPod(n2, 'ipsrv', [{ network: 'a', interface: 'net1', ips: ['10.100.0.50/24'] }]);
    const tr = await addPod(n1, 'iptrunk', [{ network: 'trunk-ab', interface: 'net1' }]);
    const ac = await addPod(n1, 'ipacc', [{ network: 'a', interface: 'net1', ips: ['10.100.0.52/24'] }]);
    await sh(tr, 'ip link add link net1 name net1.10 type vlan id 10 && ip addr add 10.100.0.51/24 dev net1.10 && ip link set net1.10 up');
    const iperfSrv = lab.spawn(srv.pod.netns, ['iperf3', '-s', '-B', '10.100.0.50', '--forceflush']);
    await iperfSrv.waitFor('Server listening', 20_000);
    await sh(tr, 'ping -n -c 1 -W 3 10.100.0.50');
    await sh(ac, 'ping -n -c 1 -W 3 10.100.0.50');
    const iperf = async (p: Pod, src: string): Promise<number> => {
      const r = await sh(p, `iperf3 -c 10.100.0.50 -B ${src} -t 3 -O 1 -J`);
      return (JSON.parse(r.stdout) as Json).end.sum_received.bits_per_second / 1e6;
    };
    const trunkMbps: number[] = [];
    const accessMbps: number[] = [];
    for (let i = 0; i < 3; i++) {
      trunkMbps.push(await iperf(tr, '10.100.0.51'));
      accessMbps.push(await iperf(ac, '10.100.0.52'));
    }
    await iperfSrv.kill();
    const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
    figures.iperf3 = { trunkVlanMbps: trunkMbps.map(Math.round), accessLegMbps: accessMbps.map(Math.round),
      ratio: Number((median(trunkMbps) / median(accessMbps)).toFixed(3)) };
    for (const p of [tr, ac, srv]) expect((await lab.chain(p.pod, 'DEL', p.conf)).code).toBe(0);

    // ADD latency of podlegs alone (standalone, no ptp), interleaved, one pod each, DEL in between.
    const tpod = await lab.addPod(n1, 'addtrunk');
    const apod = await lab.addPod(n1, 'addaccess');
    const trunkLegs = [{ network: 'trunk4', interface: 'net1' }];
    const accessLegs = ['w', 'x', 'y', 'z'].map((n, i) => ({ network: n, interface: `net${i + 1}` }));
    const call = async (command: 'ADD' | 'DEL', pod: LabPod, legs: Json[]): Promise<number> => {
      const t = process.hrtime.bigint();
      const o = await lab.exec(n1, 'podlegs', { command, pod, conf: { cniVersion: '1.1.0', name: 'bench', ...podlegsEntry(n1, legs) } });
      if (o.code !== 0) throw new Error(`${command}: ${o.stdout}${o.stderr}`);
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    const floor: number[] = [];
    const add: Record<'trunk4' | 'access4', number[]> = { trunk4: [], access4: [] };
    const del: Record<'trunk4' | 'access4', number[]> = { trunk4: [], access4: [] };
    const runs = Number(process.env.PODLEGS_BENCH_RUNS ?? 7);
    for (let i = 0; i < runs; i++) {
      const order: ('trunk4' | 'access4')[] = i % 2 ? ['access4', 'trunk4'] : ['trunk4', 'access4'];
      for (const kind of order) {
        const [pod, legs] = kind === 'trunk4' ? [tpod, trunkLegs] : [apod, accessLegs];
        add[kind].push(await call('ADD', pod, legs));
        del[kind].push(await call('DEL', pod, legs));
      }
      const t = process.hrtime.bigint();
      spawnSync('nsenter', [`--net=${n1.netns}`, '--', process.execPath, '-e', '1']);
      floor.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const r1 = (x: number): number => Math.round(x);
    figures.addLatencyMs = {
      runs, trunk4VlansMedian: r1(median(add.trunk4)), access4LegsMedian: r1(median(add.access4)),
      delTrunk4Median: r1(median(del.trunk4)), delAccess4Median: r1(median(del.access4)), nodeFloorMedian: r1(median(floor)),
      trunk4: add.trunk4.map(r1), access4: add.access4.map(r1),
    };
    expect(await podlegsLinks(n1)).toEqual([]);
  }, 600_000); // ~290 s under TCG on an idle host; more on a loaded one
});
