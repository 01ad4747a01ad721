/**
 * A real CNI runtime: Debian's podman 4.3 (CNI network backend) runs containers on the conflist
 * [bridge, podlegs] inside lab node n1, and each container gets its podlegs leg (net1, VNI 100).
 * A plain pod on node n2 ([ptp, podlegs] through the lab harness) shares the segment; `podlegs
 * agent` runs on both nodes. podman's own stop/rm runs CNI DEL, which must remove the leg, the
 * segment and the registry entry. Nothing may appear in the root namespace (podman runs under
 * `nsenter --net`, see podman/podman.ts).
 *
 * Needs root, podman, runc and busybox-static (test/setup.sh installs them) and a built
 * dist/podlegs (`npm run build`). Run: npx jest --selectProjects lab --runInBand test/lab/podman.test.ts
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CniConflist, CniPluginConf, Lab, LabNode, LabPod, LabProcess, leakCheck } from './lab';
import { bridgePodlegsConflist, LIBCNI_CACHE, Podman } from './podman/podman';
import { rootSnapshot, SEEN_MS, waitUntil } from './nf';

jest.setTimeout(300_000);

const VNI = 100;
const C_IP = '10.100.0.31'; // the podman container's leg (n1)
const P_IP = '10.100.0.32'; // the plain pod's leg (n2)
const NETWORKS = { 'vrrp-a': { vni: VNI }, 'vrrp-b': { vni: 200 } }; // vrrp-b: attached later (podlegs attach)

interface IpLink { ifname: string; address?: string; mtu?: number; addr_info?: { family: string; local: string; prefixlen: number }[] }
interface FdbEntry { mac: string; dst?: string }
interface PodmanNet { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string;
  SecondaryIPAddresses?: { Addr: string; PrefixLength: number }[]; AdditionalMACAddresses?: string[] }

const ls = (dir: string): string[] => { try { return readdirSync(dir).sort(); } catch { return []; } };
const filesUnder = (dir: string): string[] => ls(dir).flatMap((n) => {
  const p = path.join(dir, n);
  try { return statSync(p).isDirectory() ? filesUnder(p) : [p]; } catch { return []; }
});

describe('podman (CNI backend) runs containers on [bridge, podlegs] in a lab node', () => {
  let lab: Lab | undefined;
  let pm: Podman | undefined;
  let pod: LabPod | undefined; // plain pod on n2
  let podConf: CniConflist | undefined;
  const agents: LabProcess[] = [];
  const containerIds: string[] = [];
  const timings: Record<string, number> = {};
  let rootBefore: string[] = [];
  let netnsBefore: string[] = [];
  let cniCacheExisted = true;
  let cniDirExisted = true;

  const get = (): { l: Lab; p: Podman; n1: LabNode; n2: LabNode } => {
    if (!lab || !pm) throw new Error('no lab');
    return { l: lab, p: pm, n1: lab.nodes[0], n2: lab.nodes[1] };
  };
  const L = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try { return await fn(); } finally { timings[name] = Math.round(performance.now() - t0); }
  };
  const links = async (node: LabNode): Promise<IpLink[]> =>
    JSON.parse((await L().sh('ip -j -d link', { netns: node.nsName })).stdout || '[]') as IpLink[];
  const linkNames = async (node: LabNode): Promise<string[]> => (await links(node)).map((x) => x.ifname).sort();
  /** Remote VTEPs in the flood list of plvx100 on node; undefined without a segment. */
  const flood = async (node: LabNode): Promise<string[] | undefined> => {
    const r = await L().sh(`bridge -j fdb show dev plvx${VNI}`, { netns: node.nsName, allowFail: true });
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout || '[]') as FdbEntry[]).filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst ?? '?').sort();
  };
  const registryFiles = (): string[] => filesUnder(L().registryDir).map((f) => path.relative(L().registryDir, f)).sort();
  const stateFiles = (node: LabNode): string[] => filesUnder(path.join(node.dir, 'state', 'attachments')).map((f) => path.basename(f));
  const cniCache = (id: string): string[] => ls(LIBCNI_CACHE).filter((f) => f.includes(id));
  /** Namespaces podman 4.3 made (netns-<uuid>; older podman: cni-<uuid>) since we started; other labs may run alongside. */
  const newNetns = (): string[] => ls('/var/run/netns').filter((n) => /^(netns|cni)-[0-9a-f-]+$/.test(n) && !netnsBefore.includes(n));
  const podlegsEntry = (node: LabNode, ip: string): CniPluginConf => ({
    type: 'podlegs', underlay: { interface: 'ul0' }, registry: { type: 'file', path: L().registryDir },
    stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
    networks: NETWORKS, legs: [{ network: 'vrrp-a', interface: 'net1', ips: [`${ip}/24`] }],
  });

  /** What a container's DEL must have removed on n1 (the bridge plugin's cni-pl0 stays, as it does on any host). */
  const expectDetached = async (id: string): Promise<void> => {
    const { n1 } = get();
    expect(await linkNames(n1)).toEqual(['cni-pl0', 'lo', 'ul0']);
    expect(registryFiles().filter((f) => f.includes(id))).toEqual([]);
    expect(stateFiles(n1).filter((f) => f.includes(id))).toEqual([]);
    expect(cniCache(id)).toEqual([]);
    expect(newNetns()).toEqual([]);
  };

  beforeAll(async () => {
    rootBefore = rootSnapshot();
    netnsBefore = ls('/var/run/netns');
    cniDirExisted = existsSync(path.dirname(LIBCNI_CACHE));
    cniCacheExisted = existsSync(LIBCNI_CACHE);
    lab = await timed('lab create (2 nodes)', () => Lab.create({ nodes: 2 }));
    const n1 = lab.nodes[0];
    pm = Podman.setup(lab, n1, { conflist: bridgePodlegsConflist(lab, n1, podlegsEntry(n1, C_IP)) });
    // The agents: n1 must learn of n2's pod (which joins after the container), and back.
    for (const node of lab.nodes) {
      const file = path.join(node.dir, 'agent.json');
      writeFileSync(file, JSON.stringify({ underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir },
        stateDir: path.join(node.dir, 'state'), log: { level: 'info' }, agent: { socket: node.agentSocket } }));
      // The agents run podman's private copy of the build, immune to a concurrent `npm run build`.
      const agent = lab.spawn(node.netns, [path.join(pm.pluginDir, 'podlegs'), 'agent', '--config', file],
        { env: { NODE_NAME: node.name, PODLEGS_RESYNC_MS: '2000' } });
      agents.push(agent);
      await agent.waitFor('agent started', SEEN_MS);
    }
  });

  afterAll(async () => {
    const errors: string[] = [];
    const prefix = lab?.prefix;
    if (pm) {
      const forced = await timed('cleanup: podman rm -af', () => (pm as Podman).cleanup(agents.map((a) => a.pid)));
      if (forced.length) errors.push(`podman cleanup had to force: ${forced.join('; ')}`);
    }
    if (lab && pod && podConf) {
      const del = await lab.chain(pod, 'DEL', podConf);
      if (del.code !== 0) errors.push(`DEL of the n2 pod failed: ${del.stdout}${del.stderr}`);
    }
    for (const a of agents) await a.kill();
    if (lab) {
      const left = [...lab.nodes.flatMap((n) => stateFiles(n).map((f) => `${n.name}: state ${f}`)),
        ...registryFiles().map((f) => `registry ${f}`)];
      if (left.length) errors.push(`left behind: ${left.join(', ')}`);
    }
    await lab?.destroy();
    // libcni's cache dir is podman's (created on its first CNI call): drop it again when it was
    // not there before and is empty now, so the machine ends as it started.
    if (!cniCacheExisted && existsSync(LIBCNI_CACHE) && ls(LIBCNI_CACHE).length === 0) rmdirSync(LIBCNI_CACHE);
    if (!cniDirExisted && existsSync(path.dirname(LIBCNI_CACHE)) && ls(path.dirname(LIBCNI_CACHE)).length === 0) rmdirSync(path.dirname(LIBCNI_CACHE));
    for (const id of containerIds) if (cniCache(id).length) errors.push(`libcni cache of ${id}: ${cniCache(id).join(', ')}`);
    // eslint-disable-next-line no-console
    console.log(`podman lab timings (ms): ${JSON.stringify(timings)}\npodman calls: ${
      (pm?.calls ?? []).map((c) => `${c.argv.slice(0, 2).join(' ')}=${c.ms}${c.code ? `(exit ${c.code})` : ''}`).join(', ')}`);
    expect(errors).toEqual([]);
    expect(rootSnapshot()).toEqual(rootBefore);
    expect(newNetns()).toEqual([]);
    if (pm) expect(pm.processes()).toEqual([]); // agents included: they are gone by now
    if (prefix) expect(await leakCheck(prefix)).toEqual([]);
  });

  test('podman run --rm: eth0 from bridge, net1 from podlegs (10.100.0.31/24, MTU 1450); DEL on exit', async () => {
    const { p, n1 } = get();
    const cidFile = path.join(p.dir, 'run-rm.cid');
    const out = await timed('podman run --rm (ADD+run+DEL)', () => p.must(['run', '--rm', '--cidfile', cidFile, '--network', p.network,
      '--rootfs', p.rootfs, 'sh', '-c',
      'ip -o -4 addr; echo MTU $(cat /sys/class/net/net1/mtu) $(cat /sys/class/net/eth0/mtu); ip route; ls /sys/class/net']));
    const id = readFileSync(cidFile, 'utf8').trim();
    containerIds.push(id);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const addrs = [...out.matchAll(/^\d+: (\S+)\s+inet (\S+)/gm)].map((m) => [m[1], m[2]]);
    expect(addrs).toEqual([['lo', '127.0.0.1/8'], ['eth0', expect.stringMatching(/^10\.88\.1\.\d+\/24$/)], ['net1', `${C_IP}/24`]]);
    expect(out).toMatch(/^MTU 1450 1500$/m);
    // bridge's routes, untouched by podlegs; net1's connected route beside them
    expect(out).toMatch(/^default via 10\.88\.1\.1 dev eth0/m);
    expect(out).toMatch(/^10\.100\.0\.0\/24 dev net1/m);
    expect(out.split(/\s+/).filter((x) => /^(eth|net|lo)/.test(x))).toEqual(expect.arrayContaining(['eth0', 'lo', 'net1']));
    // podlegs logged the ADD and the DEL podman ran for that container
    const log = readFileSync(path.join(n1.dir, 'podlegs.log'), 'utf8').split('\n').filter(Boolean)
      .map((l) => JSON.parse(l) as { command?: string; containerId?: string; message?: string });
    expect(log.filter((e) => e.containerId === id).map((e) => e.command)).toEqual(expect.arrayContaining(['ADD', 'DEL']));
    await expectDetached(id);
  });

  test('detached container on n1 and a plain pod on n2 share VNI 100: ping both ways, ARP resolves the container', async () => {
    const { l, p, n1, n2 } = get();
    const id = (await timed('podman run -d (ADD)', () => p.must(['run', '-d', '--name', 'c1', '--network', p.network,
      '--rootfs', p.rootfs, 'sleep', '600']))).trim();
    containerIds.push(id);
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    // What podman made of podlegs' result: eth0's address primary, the leg's as secondary.
    const nets = JSON.parse(await p.must(['inspect', '--format', '{{json .NetworkSettings.Networks}}', id])) as Record<string, PodmanNet>;
    const mac = (await p.must(['exec', id, 'cat', '/sys/class/net/net1/address'])).trim();
    expect(nets[p.network]).toEqual(expect.objectContaining({
      IPAddress: expect.stringMatching(/^10\.88\.1\.\d+$/), IPPrefixLen: 24, Gateway: '10.88.1.1',
      SecondaryIPAddresses: [{ Addr: C_IP, PrefixLength: 24 }], AdditionalMACAddresses: [mac],
    }));
    const sandbox = (await p.must(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', id])).trim();
    expect(sandbox).toMatch(/^\/run\/netns\/netns-/);
    expect(newNetns()).toEqual([path.basename(sandbox)]);

    // The node side: segment + host veth in n1 (never in the root ns), member registered.
    const n1Links = await links(n1);
    expect(n1Links.map((x) => x.ifname)).toEqual(expect.arrayContaining([`plbr${VNI}`, `plvx${VNI}`, 'cni-pl0']));
    expect(registryFiles()).toEqual([`vni-${VNI}/${n1.vtep}_${id}_eth0_net1.json`]);
    expect(JSON.parse(readFileSync(path.join(l.registryDir, registryFiles()[0]), 'utf8'))).toEqual(
      expect.objectContaining({ vni: VNI, vtep: n1.vtep, mac }));
    expect(stateFiles(n1)).toEqual([`${id}_eth0.json`]);
    expect(cniCache(id)).toEqual([`${p.network}-${id}-eth0`]);

    // The plain pod on n2 joins later: ADD floods to n1 at once, n1's agent learns of n2.
    pod = await l.addPod(n2, 'b2');
    podConf = { cniVersion: '1.0.0', name: 'nf', plugins: [l.ptpPlugin(n2), podlegsEntry(n2, P_IP)] };
    const add = await timed('lab chain ADD [ptp, podlegs] on n2', () => l.chain(pod as LabPod, 'ADD', podConf as CniConflist));
    expect(add).toEqual(expect.objectContaining({ code: 0 }));
    expect(await flood(n2)).toEqual([n1.vtep]);
    await timed('n1 agent adds flood to n2', () => waitUntil('n1 flood list = [n2]', async () =>
      JSON.stringify(await flood(n1)) === JSON.stringify([n2.vtep])));

    await timed('ping pod(n2) → container(n1)', () => l.sh(`ping -c 3 -i 0.2 -W 2 ${C_IP}`, { netns: pod?.nsName }));
    const neigh = JSON.parse((await l.sh(`ip -j neigh show ${C_IP} dev net1`, { netns: pod.nsName })).stdout) as { lladdr?: string }[];
    expect(neigh.map((x) => x.lladdr)).toEqual([mac]);
    const back = await timed('ping container(n1) → pod(n2) via podman exec', () =>
      p.run(['exec', id, 'ping', '-c', '3', '-i', '0.2', '-W', '2', P_IP]));
    expect(back).toEqual(expect.objectContaining({ code: 0, stdout: expect.stringMatching(/3 packets received/) }));
  });

  test('podman stop runs CNI DEL: leg, segment, registry entry, state and netns gone; n2 drops its flood entry', async () => {
    const { l, p, n2 } = get();
    const id = containerIds[1];
    await timed('podman stop -t 0 (DEL)', () => p.must(['stop', '--time', '0', id]));
    expect((await p.must(['inspect', '--format', '{{.State.Status}}', id])).trim()).toBe('exited');
    await expectDetached(id);
    expect(registryFiles()).toEqual([`vni-${VNI}/${n2.vtep}_${pod?.containerId}_eth0_net1.json`]);
    await timed('n2 agent drops flood to n1', () => waitUntil('n2 flood list empty', async () =>
      JSON.stringify(await flood(n2)) === '[]'));
    expect((await l.sh(`ping -c 1 -W 1 ${C_IP}`, { netns: pod?.nsName, allowFail: true })).code).not.toBe(0);
    // rm of the stopped container: podman's DEL again (if any) must not fail.
    await timed('podman rm (stopped)', () => p.must(['rm', id]));
    await expectDetached(id);
    expect(await p.must(['ps', '--all', '--quiet'])).toBe('');
  });

  test('podman rm -f of a running container runs CNI DEL too; a new container gets the leg again', async () => {
    const { l, p, n1, n2 } = get();
    const id = (await p.must(['run', '-d', '--name', 'c2', '--network', p.network, '--rootfs', p.rootfs, 'sleep', '600'])).trim();
    containerIds.push(id);
    expect(registryFiles()).toContain(`vni-${VNI}/${n1.vtep}_${id}_eth0_net1.json`);
    await waitUntil('n2 flood list = [n1]', async () => JSON.stringify(await flood(n2)) === JSON.stringify([n1.vtep]));
    expect(await flood(n1)).toEqual([n2.vtep]); // from the registry at ADD, no agent needed
    // Same IP, new MAC: the pod still holds c1's (now stale) ARP entry, which would take the
    // kernel ~5 s of unicast probes to drop; forget it, as a gratuitous ARP would have made it.
    await l.sh('ip neigh flush dev net1', { netns: pod?.nsName });
    await l.sh(`ping -c 2 -i 0.2 -W 2 ${C_IP}`, { netns: pod?.nsName });
    await timed('podman rm -f -t 0 (DEL)', () => p.must(['rm', '--force', '--time', '0', id]));
    await expectDetached(id);
    await waitUntil('n2 flood list empty', async () => JSON.stringify(await flood(n2)) === '[]');
    expect(await p.settle(agents.map((a) => a.pid))).toEqual([]); // conmon and the container ended
  });

  test('podlegs attach / detach on a running container: net2 (VNI 200) added without a restart, pings across nodes, removed again; DEL removes an attached leg too', async () => {
    const { l, p, n1, n2 } = get();
    const bin = path.join(p.pluginDir, 'podlegs');
    const cli = async (node: LabNode, args: string[]): Promise<Record<string, unknown>> => {
      const r = await l.sh([bin, ...args].map((a) => `'${a}'`).join(' '), { netns: node.nsName, allowFail: true });
      if (r.code !== 0) throw new Error(`podlegs ${args[0]} failed (${r.code}): ${r.stdout}${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const flood200 = async (node: LabNode): Promise<string[] | undefined> => {
      const r = await l.sh('bridge -j fdb show dev plvx200', { netns: node.nsName, allowFail: true });
      return r.code === 0 ? (JSON.parse(r.stdout || '[]') as FdbEntry[]).filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst ?? '?') : undefined;
    };
    const id = (await p.must(['run', '-d', '--name', 'c3', '--network', p.network, '--rootfs', p.rootfs, 'sleep', '600'])).trim();
    containerIds.push(id);
    const netns = (await p.must(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', id])).trim();
    const conflistFile = path.join(p.netDir, `${p.network}.conflist`); // the file podman reads
    const n2Conf = path.join(n2.dir, 'pod-b2.conflist');
    writeFileSync(n2Conf, JSON.stringify(podConf));

    // A wrong netns is refused: the container is named as its ADD recorded it.
    const wrong = await l.sh(`'${bin}' attach --config '${conflistFile}' --container ${id} --netns /proc/1/ns/net --network vrrp-b`, { netns: n1.nsName, allowFail: true });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/was attached in netns/);

    const attached = await cli(n1, ['attach', '--config', conflistFile, '--container', id, '--netns', netns, '--network', 'vrrp-b', '--ip', '10.200.0.31/24']);
    expect(attached).toMatchObject({ interface: 'net2', network: 'vrrp-b', vni: 200, ips: ['10.200.0.31/24'] }); // next free netN
    expect((await p.must(['exec', id, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'net2']))).toContain('10.200.0.31/24');
    expect(registryFiles()).toContain(`vni-200/${n1.vtep}_${id}_eth0_net2.json`);
    // The plain pod on n2 (attached by the lab harness) gets its net2 the same way.
    await cli(n2, ['attach', '--config', n2Conf, '--container', (pod as LabPod).containerId, '--netns', (pod as LabPod).netns, '--network', 'vrrp-b', '--interface', 'net2', '--ip', '10.200.0.32/24']);
    await waitUntil('n1 floods VNI 200 to n2', async () => (await flood200(n1))?.includes(n2.vtep));
    await waitUntil('n2 floods VNI 200 to n1', async () => (await flood200(n2))?.includes(n1.vtep));
    const ping = await p.run(['exec', id, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.200.0.32']);
    expect(ping).toEqual(expect.objectContaining({ code: 0, stdout: expect.stringMatching(/3 packets received/) }));
    // net1 (VNI 100) is untouched meanwhile.
    await l.sh('ip neigh flush dev net1', { netns: pod?.nsName });
    await l.sh(`ping -c 2 -i 0.2 -W 2 ${C_IP}`, { netns: pod?.nsName });

    const detached = await cli(n1, ['detach', '--config', conflistFile, '--container', id, '--interface', 'net2']);
    expect(detached).toEqual({ detached: [{ interface: 'net2', network: 'vrrp-b', vni: 200 }] });
    expect((await p.run(['exec', id, 'ls', '/sys/class/net'])).stdout.split(/\s+/)).not.toContain('net2');
    expect(await flood200(n1)).toBeUndefined(); // its segment went with its last leg
    expect(registryFiles().filter((f) => f.startsWith('vni-200/') && f.includes(id))).toEqual([]);
    await waitUntil('n2 stops flooding VNI 200 to n1', async () => !(await flood200(n2))?.includes(n1.vtep));

    // Attached again, then podman's own DEL (rm -f) removes it with the rest: one record.
    await cli(n1, ['attach', '--config', conflistFile, '--container', id, '--netns', netns, '--network', 'vrrp-b', '--ip', '10.200.0.31/24']);
    await p.must(['rm', '--force', '--time', '0', id]);
    await expectDetached(id);
    await cli(n2, ['detach', '--config', n2Conf, '--container', (pod as LabPod).containerId, '--network', 'vrrp-b']);
    await waitUntil('n2 has no VNI 200 segment', async () => (await flood200(n2)) === undefined);
    expect(registryFiles().filter((f) => f.startsWith('vni-200/'))).toEqual([]);
  });
});
