/**
 * BGP stays Cilium's (issue 6), end to end with real speakers: gobgpd as the node speaker driven by
 * `podlegs bgp-sync`, FRR in NF pods that also have podlegs legs, FRR as the upstream router.
 * Topology and helpers: test/lab/bgp-lab.ts. Run as root:
 *   npx jest --selectProjects lab --runInBand test/lab/bgp.test.ts
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Lab, leakCheck } from './lab';
import {
  addNf, BgpLab, bgpSection, buildBgpLab, delNf, ESTABLISHED, FW_ASN, frrPeer, frrPrefixes, gobgp, gobgpAdjIn, gobgpNeighbors,
  gobgpRib, gobgpSnapshot, LB_ASN, NfPod, NODE_ASN, restartNf, runBgpSyncOnce, sleep, startPodFrr, stateDir, waitEstablished, waitFor,
} from './bgp-lab';

jest.setTimeout(240_000);

const LB_VIP = '198.51.100.10/32';      // inside lb's allowed 198.51.100.0/25
const FW_VIP = '198.51.100.130/32';     // inside fw's allowed 198.51.100.128/25
const CLUSTER = '10.96.0.0/12';         // the service CIDR
const POD_NET = '10.10.0.0/16';         // the pod CIDR
const STOLEN = '198.51.100.140/32';     // fw's range, announced by an lb pod
const SOLO_VIP = '198.51.100.20/32';    // lb's range, announced by the pod without legs

describe('BGP stays Cilium\'s: pod ↔ node peering, bgp-sync, prefix guard', () => {
  let lab: Lab | undefined;
  let b: BgpLab;
  let lb: NfPod;
  let fw: NfPod;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1 });
    b = await buildBgpLab(lab);
  });

  afterAll(async () => {
    const prefix = lab?.prefix;
    if (Object.keys(timings).length) process.stderr.write(`bgp lab timings: ${JSON.stringify(timings)}\n`);
    await lab?.destroy();
    if (prefix) expect(await leakCheck(prefix)).toEqual([]);
  });

  test('the plugin writes the pod\'s podlegs.io/bgp-peer file (node-side address seen from the pod, node ASN)', async () => {
    lb = await addNf(b.lab, b.node, 'lb1', { app: 'lb' });
    expect(lb.peer).toEqual({ address: '10.10.1.1', asn: NODE_ASN });
    expect(lb.ip).toMatch(/^10\.10\.1\.\d+$/);
    const routes = JSON.parse((await b.lab.sh('ip -j route', { netns: lb.pod.nsName })).stdout) as { dst: string; gateway?: string; dev: string }[];
    expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: lb.peer.address, dev: 'eth0' }));
  });

  test('session comes up over eth0 with legs attached; the pod\'s allowed VIP reaches the router', async () => {
    await startPodFrr(b.lab, lb, LB_ASN, [LB_VIP, CLUSTER, POD_NET, STOLEN]);
    const t0 = Date.now();
    await waitEstablished(b.lab, b.node, lb.ip);
    timings.firstSessionMs = Date.now() - t0;
    // the TCP session runs between eth0's address and the node-side peer address, not over a leg
    const ss = (await b.lab.sh('ss -Htn state established "( sport = :179 or dport = :179 )"', { netns: lb.pod.nsName })).stdout;
    expect(ss).toMatch(new RegExp(`${lb.ip.replace(/\./g, '\\.')}:\\d+\\s+${lb.peer.address.replace(/\./g, '\\.')}:179|${lb.ip.replace(/\./g, '\\.')}:179\\s+${lb.peer.address.replace(/\./g, '\\.')}:\\d+`));
    const links = JSON.parse((await b.lab.sh('ip -j link', { netns: lb.pod.nsName })).stdout) as { ifname: string }[];
    expect(links.map((l) => l.ifname).sort()).toEqual(['eth0', 'lo', 'net1']);
    await waitFor('VIP at the router', async () => (await frrPrefixes(b.lab, b.router)).includes(LB_VIP), 15_000);
    expect((await gobgpRib(b.lab, b.node))[LB_VIP]).toEqual([lb.ip]);
  });

  test('a pod with no legs ([ptp, podlegs], legs: []) is recorded: its session comes up through bgp-sync; DEL and GC undo it', async () => {
    // the L4 load balancer that only peers over eth0: no leg, but a peer file and a neighbor
    const peers = (): Promise<string[]> => gobgpNeighbors(b.lab, b.node).then((ns) => ns.map((n) => n.address));
    const files = (dir: string, id: string): string[] => (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.startsWith(id));
    const gone = async (p: NfPod): Promise<void> => {
      await waitFor(`neighbor ${p.ip} removed`, async () => !(await peers()).includes(p.ip), 15_000);
      expect(files(path.join(stateDir(b.node), 'bgp-peer'), p.pod.containerId)).toEqual([]);
      expect(files(path.join(stateDir(b.node), 'attachments'), p.pod.containerId)).toEqual([]);
    };
    const solo = await addNf(b.lab, b.node, 'l4lb1', { app: 'lb' }, []);
    expect(solo.peer).toEqual({ address: '10.10.1.1', asn: NODE_ASN });
    const links = JSON.parse((await b.lab.sh('ip -j link', { netns: solo.pod.nsName })).stdout) as { ifname: string }[];
    expect(links.map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
    await startPodFrr(b.lab, solo, LB_ASN, [SOLO_VIP]);
    await waitEstablished(b.lab, b.node, solo.ip);
    await waitFor('the legless pod\'s VIP at the router', async () => (await frrPrefixes(b.lab, b.router)).includes(SOLO_VIP), 15_000);
    await delNf(b.lab, solo);
    await gone(solo);
    await waitFor('its VIP withdrawn at the router', async () => !(await frrPrefixes(b.lab, b.router)).includes(SOLO_VIP), 15_000);

    // GC (a 1.1.0 runtime) of an attachment it no longer lists removes the record as well; lb stays
    const stale = await addNf(b.lab, b.node, 'l4lb2', { app: 'lb' }, []);
    await waitFor(`neighbor ${stale.ip} configured`, async () => (await peers()).includes(stale.ip), 15_000);
    const entry = { ...(stale.conf.plugins[1] as object), name: stale.conf.name, cniVersion: '1.1.0',
      'cni.dev/valid-attachments': [{ containerID: lb.pod.containerId, ifname: 'eth0' }] };
    expect((await b.lab.exec(b.node, 'podlegs', { command: 'GC', conf: entry })).code).toBe(0);
    await gone(stale);
    expect(await peers()).toContain(lb.ip);
    await delNf(b.lab, stale); // the runtime's DEL after GC: ptp's part, podlegs has nothing left
  });

  test('prefix guard: cluster CIDRs and another selector\'s VIP are rejected (not in the RIB, not at the router)', async () => {
    fw = await addNf(b.lab, b.node, 'fw1', { app: 'fw' });
    await startPodFrr(b.lab, fw, FW_ASN, [FW_VIP]);
    await waitEstablished(b.lab, b.node, fw.ip);
    await waitFor('fw VIP at the router', async () => (await frrPrefixes(b.lab, b.router)).includes(FW_VIP), 15_000);
    // gobgpd received all of lb's announcements (adj-in, before policy) but accepted only the allowed one
    expect(await gobgpAdjIn(b.lab, b.node, lb.ip)).toEqual(expect.arrayContaining([POD_NET, CLUSTER, LB_VIP, STOLEN]));
    const rib = await gobgpRib(b.lab, b.node);
    expect(rib).toEqual({ [FW_VIP]: [fw.ip], [LB_VIP]: [lb.ip] });
    const atRouter = await frrPrefixes(b.lab, b.router);
    for (const p of [CLUSTER, POD_NET, STOLEN]) expect(atRouter).not.toContain(p);
    expect(atRouter).toEqual([FW_VIP, LB_VIP].sort());
  });

  test('attaching and detaching legs on the same pod and on neighbours does not flap the session', async () => {
    const before = (await gobgpNeighbors(b.lab, b.node)).find((n) => n.address === lb.ip)!;
    const frrBefore = (await frrPeer(b.lab, lb.frr!, lb.peer.address))!;
    expect(before.state).toBe(ESTABLISHED);
    expect(frrBefore.state).toBe('Established');
    for (let round = 0; round < 3; round++) {
      // an extra leg on the same pod (a second attachment, Multus-style) and away again
      const extra = { cniVersion: '1.1.0', name: 'nf-extra', plugins: [{ ...(lb.conf.plugins[1] as object), legs: [{ network: 'b', interface: 'net2' }] }] };
      const add = await b.lab.chain(lb.pod, 'ADD', extra, { ifname: 'net2' });
      expect(add.code).toBe(0);
      // a neighbour pod on the same segment (network a) comes and goes
      const nb = await addNf(b.lab, b.node, `nb${round}`, { app: 'other' }, [{ network: 'a', interface: 'net1' }, { network: 'b', interface: 'net2' }]);
      await sleep(300);
      expect((await b.lab.chain(lb.pod, 'DEL', extra, { ifname: 'net2' })).code).toBe(0);
      await delNf(b.lab, nb);
    }
    await sleep(1000);
    const after = (await gobgpNeighbors(b.lab, b.node)).find((n) => n.address === lb.ip)!;
    const frrAfter = (await frrPeer(b.lab, lb.frr!, lb.peer.address))!;
    expect(after.state).toBe(ESTABLISHED);
    expect(after.establishedAt).toBe(before.establishedAt);
    expect(frrAfter.connectionsEstablished).toBe(frrBefore.connectionsEstablished);
    expect(frrAfter.connectionsDropped).toBe(frrBefore.connectionsDropped);
    // the neighbour pods (label app=other) were never peered
    expect((await gobgpNeighbors(b.lab, b.node)).map((n) => n.address).sort()).toEqual(['203.0.113.2', fw.ip, lb.ip].sort());
  });

  test('pod restarted with a new eth0 IP: bgp-sync re-peers without manual change (time measured)', async () => {
    const old = lb.ip;
    const r = await restartNf(b, lb, 'lb2', LB_ASN, [LB_VIP]);
    lb = r.pod;
    timings.repeerMs = r.ms;
    timings.neighborAddedMs = r.syncMs;
    expect(lb.ip).not.toBe(old);
    const addrs = (await gobgpNeighbors(b.lab, b.node)).map((n) => n.address);
    expect(addrs).not.toContain(old);
    expect(addrs).toContain(lb.ip);
    await waitFor('VIP back at the router via the new pod', async () => (await gobgpRib(b.lab, b.node))[LB_VIP]?.[0] === lb.ip, 15_000);
    expect(await frrPrefixes(b.lab, b.router)).toContain(LB_VIP); // how fast: npm run bench (bench-bgp)
  });

  test('speaker "cilium": the same pods rendered as Cilium resources (files for kubectl apply)', async () => {
    const out = path.join(b.lab.dir, 'cilium-out');
    const bgp = { ...bgpSection(), speaker: 'cilium', cilium: { outputDir: out, apiVersions: ['v2', 'v2alpha1'],
      upstreamPeers: [{ name: 'rt', peerAddress: '203.0.113.2', peerASN: 65000 }] } };
    const r = runBgpSyncOnce(b.lab, b.node, b.syncConfigOf(bgp), ['--once']);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ciliumbgpclusterconfig-podlegs-n1.json', 'ciliumbgppeerconfig-podlegs-fw.json',
      'ciliumbgppeerconfig-podlegs-lb.json', 'ciliumbgppeeringpolicy-podlegs-n1.json']);
    const cc = JSON.parse(readFileSync(path.join(out, 'ciliumbgpclusterconfig-podlegs-n1.json'), 'utf8')) as { spec: { bgpInstances: { localASN: number; peers: { peerAddress: string; peerASN: number }[] }[] } };
    expect(cc.spec.bgpInstances[0].localASN).toBe(NODE_ASN);
    expect(cc.spec.bgpInstances[0].peers.map((p) => `${p.peerAddress} ${p.peerASN}`).sort())
      .toEqual(['203.0.113.2 65000', `${fw.ip} ${FW_ASN}`, `${lb.ip} ${LB_ASN}`].sort());
    const yaml = runBgpSyncOnce(b.lab, b.node, b.syncConfigOf(bgp), ['--render']);
    expect(yaml.stdout).toContain(`peerAddress: "${lb.ip}"`);
    expect(yaml.stdout.match(/^---$/gm)).toHaveLength(4);
  });

  test('bad selector / ASN / prefix input: clear error, nothing applied', async () => {
    const snap = await gobgpSnapshot(b.lab, b.node);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['selector', { podSelector: 'app in (lb', selectors: undefined }, /podSelector: unbalanced parentheses/],
      ['ASN', { localAsn: 4294967295 }, /bgp.localAsn must be an AS number/],
      ['prefix', { selectors: [{ name: 'lb', podSelector: 'app=lb', allowedPrefixes: ['198.51.100.10/24'] }] }, /has host bits set/],
      ['prefix inside the cluster CIDR', { selectors: [{ name: 'lb', podSelector: 'app=lb', allowedPrefixes: ['10.96.1.0/24'] }] }, /lies inside the denied 10.96.0.0\/12/],
      ['missing pod CIDRs', { podCidrs: undefined }, /bgp.podCidrs is required/],
    ];
    for (const [what, change, msg] of cases) {
      const bgp: Record<string, unknown> = { ...bgpSection(), ...change };
      for (const k of Object.keys(bgp)) if (bgp[k] === undefined) delete bgp[k];
      const r = runBgpSyncOnce(b.lab, b.node, b.syncConfigOf(bgp), ['--once']);
      expect({ what, code: r.code }).toEqual({ what, code: 1 });
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout).toBe('');
    }
    // a pod with a bad ASN annotation (static mode: label) is reported and not peered; the others stay
    const bad = await addNf(b.lab, b.node, 'badasn', { app: 'lb', 'podlegs.io/bgp-asn': 'sixty-five' });
    await waitFor('bgp-sync reports the bad ASN', async () => b.bgpSync.stderr().includes('annotation podlegs.io/bgp-asn=\\"sixty-five\\" is not an AS number'), 10_000);
    expect((await gobgpNeighbors(b.lab, b.node)).map((n) => n.address)).not.toContain(bad.ip);
    await delNf(b.lab, bad);
    await sleep(500);
    expect(await gobgpSnapshot(b.lab, b.node)).toBe(snap);
  });

  test('dry run plans nothing when in step; pod deletion removes its neighbor; DEL removes the bgp-peer file', async () => {
    const dry = runBgpSyncOnce(b.lab, b.node, b.syncConfigOf(bgpSection()), ['--once', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ applied: false, ops: [] });
    await delNf(b.lab, fw);
    await waitFor('fw neighbor removed', async () => !(await gobgpNeighbors(b.lab, b.node)).some((n) => n.address === fw.ip), 10_000);
    await waitFor('fw VIP withdrawn at the router', async () => !(await frrPrefixes(b.lab, b.router)).includes(FW_VIP), 15_000);
    await delNf(b.lab, lb);
    await waitFor('lb neighbor removed', async () => (await gobgpNeighbors(b.lab, b.node)).map((n) => n.address).join() === '203.0.113.2', 10_000);
    const peerDir = path.join(stateDir(b.node), 'bgp-peer');
    expect(existsSync(peerDir) ? readdirSync(peerDir) : []).toEqual([]);
    // the upstream router session, configured outside bgp-sync, was never touched
    expect((await gobgpNeighbors(b.lab, b.node)).find((n) => n.address === '203.0.113.2')?.state).toBe(ESTABLISHED);
    expect(b.bgpSync.stderr()).not.toMatch(/"level":"error"/);
    expect(await gobgp(b.lab, b.node, 'policy neighbor podlegs-peers')).not.toMatch(/10\.10\./);
  });
});
