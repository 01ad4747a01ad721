/**
 * A keepalived VRRP pair across nodes over a podlegs leg, failing over after a crash.
 * Run as root after `npm run build`:
 *   npx jest --selectProjects lab --runInBand test/lab/keepalived.test.ts
 *
 *   node  pod     leg (network "a", VNI 100)   role
 *   n1    nf1     net1 10.100.0.1/24           keepalived, priority 150 (master)
 *   n2    nf2     net1 10.100.0.2/24           keepalived, priority 100 (backup)
 *   n3    client  net1 10.100.0.3/24           pings the VIP 10.100.0.100
 *
 * VRRPv2 adverts (multicast 224.0.0.18, advert_int 1 s) and the new master's gratuitous ARPs
 * cross the nodes only through the VXLAN segment, so they prove BUM traffic end to end.
 * A crash is SIGKILL to keepalived's VRRP process and its parent (by PID): no priority-0
 * advert, the VIP stays on the dead master's leg, exactly as after a real crash.
 * The tests assert that failover happens and print how long it took; every wait is bounded
 * generously (a loaded machine stalls for seconds). The failover time is a benchmark figure:
 * node scripts/bench-failover.mjs.
 */
import { Lab, LabProcess } from './lab';
import {
  addNfPod, addrsOf, agentProblems, CONVERGE_MS, crashKeepalived, delNfPod, FailoverTimes, Keepalived, macOf, measureFailover, neighMac, NfPod,
  destroyChecked, settledLeftovers, pingOnce, rootSnapshot, SEEN_MS, startAgent, startKeepalived, vipOwner, VrrpOptions, waitUntil,
} from './nf';

jest.setTimeout(300_000);

const VIP = '10.100.0.100/24';
const VIP_IP = VIP.split('/')[0];
const vrrp = (routerId: string, priority: number): VrrpOptions => ({ routerId, vrid: 51, priority, vip: VIP, advertInt: 1 });
const fmt = (t: FailoverTimes): string =>
  `VIP on backup after ${t.vipMs} ms, client served by backup after ${t.clientMs} ms (${t.lostPings}/${t.sentPings} pings lost)`;

describe('keepalived VRRP pair across nodes over a podlegs leg', () => {
  let lab: Lab | undefined;
  const agents: LabProcess[] = [];
  let nf1: NfPod;
  let nf2: NfPod;
  let client: NfPod;
  const ka: Record<string, Keepalived> = {};
  const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };
  const t0 = Date.now();
  let root: string[] = [];
  const times: string[] = [];

  beforeAll(async () => {
    root = rootSnapshot();
    lab = await Lab.create({ nodes: 3 });
    for (const n of lab.nodes) agents.push(await startAgent(lab, n));
    const leg = (ip: string) => [{ network: 'a', interface: 'net1', ips: [ip] }];
    nf1 = await addNfPod(lab, lab.nodes[0], 'nf1', leg('10.100.0.1/24'));
    nf2 = await addNfPod(lab, lab.nodes[1], 'nf2', leg('10.100.0.2/24'));
    client = await addNfPod(lab, lab.nodes[2], 'client', leg('10.100.0.3/24'));
  });

  afterAll(async () => {
    try {
      await destroyChecked(lab, root);
    } finally {
      for (const t of times) console.log(t);
      console.log(`keepalived lab: ${((Date.now() - t0) / 1000).toFixed(1)} s in total`);
    }
  });

  const ownerName = async (): Promise<string | undefined> => (await vipOwner(get(), [nf1.pod, nf2.pod], VIP))?.name;

  test('the higher priority becomes master and owns the VIP; the client reaches it', async () => {
    const l = get();
    const start = Date.now();
    [ka.nf1, ka.nf2] = await Promise.all([startKeepalived(l, nf1.pod, vrrp('nf1', 150)), startKeepalived(l, nf2.pod, vrrp('nf2', 100))]);
    await waitUntil('nf1 to own the VIP alone', async () => (await ownerName()) === 'nf1', CONVERGE_MS);
    await ka.nf1.proc.waitFor(/VI_51.*Entering MASTER STATE/, SEEN_MS);
    expect(ka.nf2.proc.stdout() + ka.nf2.proc.stderr()).toMatch(/VI_51.*Entering BACKUP STATE/);
    times.push(`initial election: nf1 master ${Date.now() - start} ms after start`);
    await waitUntil('client ping to the VIP', () => pingOnce(l, client.pod, VIP_IP, 1), CONVERGE_MS);
    expect(await neighMac(l, client.pod, VIP_IP)).toBe(await macOf(l, nf1.pod.nsName, 'net1'));
    // nf2 stays backup while nf1's adverts keep arriving over VXLAN
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await ownerName()).toBe('nf1');
  });

  test('kill -9 of the master\'s keepalived: the backup takes over, the client follows its gratuitous ARP', async () => {
    const l = get();
    const { at: killedAt } = await crashKeepalived(ka.nf1);
    const t = await measureFailover(l, killedAt, nf2.pod, client.pod, VIP);
    times.push(`failover after kill -9 of keepalived (stale VIP left on nf1): ${fmt(t)}`);
    await ka.nf2.proc.waitFor(/VI_51.*Entering MASTER STATE/, SEEN_MS);
    expect(await addrsOf(l, nf1.pod.nsName, 'net1')).toContain(VIP_IP); // the crash left it there
    expect(await neighMac(l, client.pod, VIP_IP)).toBe(await macOf(l, nf2.pod.nsName, 'net1'));
  });

  test('the restarted master preempts again', async () => {
    const l = get();
    await l.sh(`ip addr del ${VIP} dev net1`, { netns: nf1.pod.nsName }); // what a restarted pod would not have
    const start = Date.now();
    ka.nf1 = await startKeepalived(l, nf1.pod, vrrp('nf1', 150));
    await waitUntil('nf1 to own the VIP alone again', async () => (await ownerName()) === 'nf1', CONVERGE_MS);
    const mac1 = await macOf(l, nf1.pod.nsName, 'net1');
    await waitUntil('client to follow nf1', async () => (await pingOnce(l, client.pod, VIP_IP, 0.5)) && (await neighMac(l, client.pod, VIP_IP)) === mac1, CONVERGE_MS);
    times.push(`preemption by the restarted nf1: VIP and client back on nf1 after ${Date.now() - start} ms`);
    await ka.nf2.proc.waitFor(/Entering MASTER STATE[\s\S]*VI_51.*Entering BACKUP STATE/, SEEN_MS); // nf2 stepped back
  });

  test('the master pod dies (kill -9, netns gone): the client loses the VIP only until the backup takes over', async () => {
    const l = get();
    const { at: killedAt } = await crashKeepalived(ka.nf1);
    await l.removePod(nf1.pod); // the pod is gone: its leg disappears from the segment
    const t = await measureFailover(l, killedAt, nf2.pod, client.pod, VIP);
    times.push(`failover after the master pod died: ${fmt(t)}`);
    expect(await ownerName()).toBe('nf2');
    // DEL of the dead pod works from the recorded state (no netns any more)
    await delNfPod(l, nf1);
  });

  test('DEL of the remaining pods leaves nothing behind', async () => {
    const l = get();
    await ka.nf2.proc.kill();
    await delNfPod(l, nf2);
    await delNfPod(l, client);
    expect(await settledLeftovers(l)).toEqual([]);
    for (const a of agents) {
      await a.kill();
      expect(agentProblems(a)).toEqual([]);
    }
  });
});
