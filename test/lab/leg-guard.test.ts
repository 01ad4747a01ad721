/**
 * The leg guard (security mode "enforce") with a real keepalived pair, and spoofing that it
 * stops. Run as root after `npm run build`:
 *   npx jest --selectProjects lab --runInBand test/lab/leg-guard.test.ts
 *
 *   node  pod      net1: network "g" (VNI 300, enforce;   net2: network "o" (VNI 400, off)
 *                  nf1/nf2's legs declare VRRP 51, VIP 10.30.0.100)
 *   n1    nf1      10.30.0.1   keepalived master         10.40.0.1
 *   n2    nf2      10.30.0.2   keepalived backup         10.40.0.2
 *   n3    client   10.30.0.3   pings the VIP             10.40.0.3
 *   n1    mallory  10.30.0.4   spoofs                    10.40.0.4
 *
 * Each spoofing case is sent out of both of mallory's legs: on net2 (off) it must reach the
 * victims (nf1 on the same node, client on another, the underlay), which proves the
 * captures can see it; on net1 (enforce) it must reach no one, and the guard's drop counter
 * (agent /metrics, podlegs status) rises.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Lab, LabPod, LabProcess } from './lab';
import {
  addNfPod, agentProblems, checkPodlegs, CONVERGE_MS, crashKeepalived, delNfPod, Keepalived, macOf, neighMac, NfPod,
  destroyChecked, settledLeftovers, pingOnce, rootSnapshot, SEEN_MS, sleep, startAgent, waitUntil, addrsOf,
} from './nf';
import { arpFrame, markerFrame, sendFrames } from './frames';
import { hostVethName } from '../../overlay/names';

const hostIf = (p: NfPod, leg: string): string => hostVethName(p.pod.containerId, 'eth0', leg);

jest.setTimeout(400_000);

const VRID = 51;
const VIP = '10.30.0.100';
const VMAC = '00:00:5e:00:01:33';
// The network enforces for every leg; only the VRRP pair's legs declare the router (a leg's
// security replaces the network's), so the VIP and VMAC are the pair's, not the segment's.
const NETWORKS = {
  g: { vni: 300, security: { mode: 'enforce' } },
  o: { vni: 400 },
};
const PAIR = { mode: 'enforce', vrrp: [{ vrid: VRID, vips: [VIP] }] };
const legs = (n: number, vrrpPair = false) => [
  { network: 'g', interface: 'net1', ips: [`10.30.0.${n}/24`], ...(vrrpPair ? { security: PAIR } : {}) },
  { network: 'o', interface: 'net2', ips: [`10.40.0.${n}/24`] },
];

/** keepalived.conf: one VRRPv2 instance on net1, optionally with use_vmac (VIP on a macvlan "vrrp.51" with the VMAC). */
function kaConf(routerId: string, priority: number, vmac: boolean): string {
  return `global_defs {
  router_id ${routerId}
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 3
  vrrp_garp_master_refresh 0
}
vrrp_instance VI_${VRID} {
  state BACKUP
  interface net1
  ${vmac ? 'use_vmac vrrp.51' : ''}
  virtual_router_id ${VRID}
  priority ${priority}
  advert_int 1
  virtual_ipaddress {
    ${VIP}/24
  }
}
`;
}

async function startKa(lab: Lab, pod: LabPod, priority: number, vmac: boolean): Promise<Keepalived> {
  const base = path.join(lab.dir, `ka-${pod.name}-${vmac ? 'vmac' : 'plain'}`);
  const confFile = `${base}.conf`;
  writeFileSync(confFile, kaConf(pod.name, priority, vmac));
  const proc = lab.spawn(pod.netns, ['keepalived', '-n', '-l', '-D', '-P', '-R', '-f', confFile, '-p', `${base}.pid`, '-r', `${base}-vrrp.pid`]);
  await proc.waitFor(/Entering BACKUP STATE|Entering MASTER STATE/, SEEN_MS);
  return { proc, pidFile: `${base}.pid`, vrrpPidFile: `${base}-vrrp.pid`, confFile, pod };
}

describe('leg guard: VRRP passes, spoofing does not', () => {
  let lab: Lab | undefined;
  const agents: LabProcess[] = [];
  let nf1: NfPod, nf2: NfPod, client: NfPod, mallory: NfPod;
  let root: string[] = [];
  const notes: string[] = [];
  const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };

  beforeAll(async () => {
    root = rootSnapshot();
    lab = await Lab.create({ nodes: 3 });
    for (const n of lab.nodes) agents.push(await startAgent(lab, n));
    nf1 = await addNfPod(lab, lab.nodes[0], 'nf1', legs(1, true), { networks: NETWORKS as never });
    nf2 = await addNfPod(lab, lab.nodes[1], 'nf2', legs(2, true), { networks: NETWORKS as never });
    client = await addNfPod(lab, lab.nodes[2], 'client', legs(3), { networks: NETWORKS as never });
    mallory = await addNfPod(lab, lab.nodes[0], 'mallory', legs(4), { networks: NETWORKS as never });
  });

  afterAll(async () => {
    try {
      await destroyChecked(lab, root);
    } finally {
      for (const n of notes) console.log(n);
    }
  });

  test('CHECK passes with the guard in place; the guarded leg carries ordinary traffic', async () => {
    const l = get();
    for (const p of [nf1, nf2, client, mallory]) {
      const r = await checkPodlegs(l, p);
      expect({ pod: p.pod.name, code: r.code, out: r.stdout }).toMatchObject({ pod: p.pod.name, code: 0 });
    }
    await waitUntil('client → nf1 over the guarded leg', () => pingOnce(l, client.pod, '10.30.0.1', 1), CONVERGE_MS);
    await waitUntil('mallory → nf2 over the guarded leg', () => pingOnce(l, mallory.pod, '10.30.0.2', 1), CONVERGE_MS);
    const tc = await l.sh(`tc filter show dev ${hostIf(mallory, 'net1')} ingress`, { netns: l.nodes[0].nsName });
    expect(tc.stdout).toMatch(/bpf .*direct-action/);
    const none = await l.sh(`tc filter show dev ${hostIf(mallory, 'net2')} ingress`, { netns: l.nodes[0].nsName, allowFail: true });
    expect(none.stdout).not.toMatch(/bpf/);
  });

  for (const vmac of [false, true]) {
    test(`keepalived${vmac ? ' with use_vmac' : ''} elects, fails over after a crash, and the client follows the VIP`, async () => {
      const l = get();
      const ifOf = vmac ? 'vrrp.51' : 'net1';
      const [k1, k2] = await Promise.all([startKa(l, nf1.pod, 150, vmac), startKa(l, nf2.pod, 100, vmac)]);
      try {
        await waitUntil('nf1 to own the VIP', async () => (await addrsOf(l, nf1.pod.nsName, ifOf)).includes(VIP), CONVERGE_MS);
        await k1.proc.waitFor(/VI_51.*Entering MASTER STATE/, SEEN_MS);
        await waitUntil('client ping to the VIP', () => pingOnce(l, client.pod, VIP, 1), CONVERGE_MS);
        const want1 = vmac ? VMAC : await macOf(l, nf1.pod.nsName, 'net1');
        expect(await neighMac(l, client.pod, VIP)).toBe(want1);
        await sleep(3000); // nf2 stays backup: nf1's adverts pass nf1's guard
        expect(k2.proc.stdout() + k2.proc.stderr()).not.toMatch(/VI_51.*Entering MASTER STATE/);
        const { at } = await crashKeepalived(k1);
        await waitUntil('nf2 to own the VIP', async () => (await addrsOf(l, nf2.pod.nsName, ifOf)).includes(VIP), CONVERGE_MS);
        const want2 = vmac ? VMAC : await macOf(l, nf2.pod.nsName, 'net1');
        await waitUntil('the client to reach the VIP at nf2', async () => (await pingOnce(l, client.pod, VIP, 0.3)) && (await neighMac(l, client.pod, VIP)) === want2, CONVERGE_MS);
        notes.push(`guarded keepalived${vmac ? ' (use_vmac)' : ''}: client served by nf2 ${Date.now() - at} ms after the kill`);
        // it is nf2 that answers now: the VIP stays on the dead nf1, whose neighbour replies would differ
        if (vmac) expect(await neighMac(l, client.pod, VIP)).toBe(VMAC);
      } finally {
        await k2.proc.kill();
        if (k1.proc.running()) await k1.proc.kill();
        for (const p of [nf1, nf2]) await l.sh(`ip addr del ${VIP}/24 dev net1 2>/dev/null; ip link del vrrp.51 2>/dev/null; true`, { netns: p.pod.nsName });
      }
    });
  }


  async function securityDrops(pod: NfPod, iface: string): Promise<number> {
    const l = get();
    const r = await l.sh('curl -s http://127.0.0.1:9750/metrics', { netns: pod.pod.node.nsName });
    const line = r.stdout.split('\n').find((x) => x.startsWith('podlegs_leg_security_drops_total{') && x.includes(`interface="${iface}"`) && x.includes(`pod="${pod.pod.containerId.slice(0, 12)}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  test('spoofing from a third pod reaches no one on the guarded leg, gets through on the unguarded one; counters rise', async () => {
    const l = get();
    const m = { net1: await macOf(l, mallory.pod.nsName, 'net1'), net2: await macOf(l, mallory.pod.nsName, 'net2') };
    const victim2 = { net1: await macOf(l, nf2.pod.nsName, 'net1'), net2: await macOf(l, nf2.pod.nsName, 'net2') };
    const sub = (leg: 'net1' | 'net2'): string => (leg === 'net1' ? '30' : '40');
    const cases = (leg: 'net1' | 'net2'): { name: string; frame: string; seen: RegExp }[] => [
      { name: "frame with nf2's source MAC", frame: markerFrame(victim2[leg], `SPOOFMAC${leg}`), seen: new RegExp(`${victim2[leg]} > ff:ff:ff:ff:ff:ff, ethertype Unknown \\(0x88b5\\)`) },
      { name: "frame with the pair's VRRP virtual MAC", frame: markerFrame(VMAC, `SPOOFVMAC${leg}`), seen: new RegExp(`${VMAC} > ff:ff:ff:ff:ff:ff, ethertype Unknown \\(0x88b5\\)`) },
      { name: 'gratuitous ARP for the VIP', frame: arpFrame({ ethSrc: m[leg], sha: m[leg], spa: `10.${sub(leg)}.0.100` }), seen: new RegExp(`Reply 10\\.${sub(leg)}\\.0\\.100 is-at ${m[leg]}`) },
      { name: "gratuitous ARP for nf2's address", frame: arpFrame({ ethSrc: m[leg], sha: m[leg], spa: `10.${sub(leg)}.0.2` }), seen: new RegExp(`Reply 10\\.${sub(leg)}\\.0\\.2 is-at ${m[leg]}`) },
      { name: "ARP request with nf1's address as sender", frame: arpFrame({ ethSrc: m[leg], sha: m[leg], spa: `10.${sub(leg)}.0.1`, tpa: `10.${sub(leg)}.0.3`, op: 1 }), seen: new RegExp(`Request who-has 10\\.${sub(leg)}\\.0\\.3 tell 10\\.${sub(leg)}\\.0\\.1`) },
      { name: "ARP with nf2's MAC as sender hardware address", frame: arpFrame({ ethSrc: m[leg], sha: victim2[leg], spa: `10.${sub(leg)}.0.4` }), seen: new RegExp(`Reply 10\\.${sub(leg)}\\.0\\.4 is-at ${victim2[leg]}`) },
    ];
    const before = await securityDrops(mallory, 'net1');
    const results: string[] = [];
    for (const leg of ['net2', 'net1'] as const) {
      const caps = await Promise.all([
        l.spawn(nf1.pod.netns, ['tcpdump', '-l', '-n', '-e', '-i', leg, 'arp or ether proto 0x88b5']),
        l.spawn(client.pod.netns, ['tcpdump', '-l', '-n', '-e', '-i', leg, 'arp or ether proto 0x88b5']),
        l.spawn(path.join('/var/run/netns', l.underlay), ['tcpdump', '-l', '-n', '-e', '-i', 'ulbr', 'udp port 4789']),
      ]);
      try {
        for (const c of caps) await c.waitFor(/listening on/, SEEN_MS);
        await sendFrames(l, mallory.pod, leg, cases(leg).map((c) => c.frame));
        // a legitimate frame after the spoofed ones: when it is seen everywhere, everything sent before it would have been
        await sendFrames(l, mallory.pod, leg, [arpFrame({ ethSrc: m[leg], sha: m[leg], spa: `10.${sub(leg)}.0.4` })], 1);
        const own = new RegExp(`Reply 10\\.${sub(leg)}\\.0\\.4 is-at ${m[leg]}`);
        for (const c of caps) await waitUntil(`mallory's own gratuitous ARP on ${leg} to be seen`, async () => own.test(c.stdout()), CONVERGE_MS);
        await sleep(500);
      } finally {
        for (const c of caps) await c.kill();
      }
      for (const c of cases(leg)) {
        const where = ['nf1 (same node)', 'client (other node)', 'underlay'].filter((_, i) => c.seen.test(caps[i].stdout()));
        results.push(`${leg === 'net1' ? 'enforce' : 'off'}: ${c.name}: seen at ${where.join(', ') || 'no one'}`);
        if (leg === 'net2') expect({ case: c.name, where }).toEqual({ case: c.name, where: ['nf1 (same node)', 'client (other node)', 'underlay'] });
        else expect({ case: c.name, where }).toEqual({ case: c.name, where: [] });
      }
    }
    notes.push(...results);
    // 6 cases × 3 rounds dropped on net1; the agent's counter and podlegs status say so
    try {
      await waitUntil('the drop counter to count the spoofed frames', async () => (await securityDrops(mallory, 'net1')) - before >= 18, CONVERGE_MS);
    } catch (e) {
      const metrics = (await l.sh('curl -s http://127.0.0.1:9750/metrics', { netns: l.nodes[0].nsName })).stdout.split('\n').filter((x) => x.includes('security'));
      throw new Error(`${(e as Error).message}; before ${before}, metrics: ${metrics.join(' | ')}; agent: ${agents[0].stderr().slice(-2000)}`);
    }
    const status = JSON.parse((await l.sh(`${l.podlegsBin} status --json --config ${path.join(l.nodes[0].dir, 'agent.json')}`, { netns: l.nodes[0].nsName })).stdout) as { guards: { interface: string; hostIf: string; drops: number }[] };
    expect(status.guards.find((g) => g.hostIf === hostIf(mallory, 'net1'))?.drops).toBeGreaterThanOrEqual(18);
    expect(await securityDrops(nf1, 'net1')).toBe(0); // keepalived's adverts and ARPs were never dropped
    expect(agentProblems(agents[0]).filter((x) => !/leg guard dropped spoofed frames/.test(x))).toEqual([]);
    expect(agents[0].stderr()).toMatch(/leg guard dropped spoofed frames/);
  });

  test('DEL leaves nothing of the guard behind', async () => {
    const l = get();
    for (const p of [nf1, nf2, client, mallory]) await delNfPod(l, p);
    expect(await settledLeftovers(l)).toEqual([]);
    for (const n of l.nodes) {
      const q = await l.sh('tc -s qdisc show; tc filter show', { netns: n.nsName });
      expect(q.stdout).not.toMatch(/clsact|bpf/);
    }
    for (const a of agents) await a.kill();
  });
});
