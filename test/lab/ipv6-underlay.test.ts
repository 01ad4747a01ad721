/**
 * IPv6 underlay: 2 nodes whose only underlay addresses are 2001:db8::11/64 and 2001:db8::12/64
 * (the lab's `underlay: 'ipv6'`), `podlegs agent` on both, pods chained [ptp, podlegs] in static
 * mode with an access leg on VNI 100 each. VXLAN over IPv6 costs 70 bytes (outer IPv6 40 + UDP 8
 * + VXLAN 8 + Ethernet 14), so on a 1500-byte underlay a leg gets 1430, not IPv4's 1450.
 * Run as root after `npm run build`:
 *   npx jest --selectProjects lab --runInBand test/lab/ipv6-underlay.test.ts
 *
 *   node  VTEP           pod  leg
 *   n1    2001:db8::11   p1   net1 a 10.100.0.1/24   (underlay auto-detected from ul0)
 *   n2    2001:db8::12   p2   net1 a 10.100.0.2/24   (underlay.vtep "2001:DB8:0::12", not canonical)
 */
import { Lab, LabNode, LabProcess } from './lab';
import {
  addNfPod, agentProblems, checkPodlegs, delNfPod, destroyChecked, filesUnder, floodDsts, ipJson, linkNames,
  macOf, NfPod, settledLeftovers, podConflist, rootSnapshot, startAgent, waitUntil,
} from './nf';

jest.setTimeout(180_000);

const UNDERLAY_MTU = 1500; // the lab's veths
const LEG_MTU = UNDERLAY_MTU - 70;

interface IpLinkDetail {
  ifname: string; mtu: number; link_index?: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string; port?: number; link?: string } };
}
interface FdbRow { mac: string; dst?: string; ifname?: string }
interface CniResult { interfaces?: { name: string; mtu?: number; sandbox?: string }[] }

describe('IPv6 underlay: 2 nodes, access legs, VXLAN over IPv6', () => {
  let lab: Lab | undefined;
  const agents: LabProcess[] = [];
  const pods: Record<string, NfPod> = {};
  let root: string[] = [];
  const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };
  const node = (i: number): LabNode => get().nodes[i - 1];
  const link = async (netns: string, ifname: string): Promise<IpLinkDetail> => {
    const [l] = await ipJson<IpLinkDetail[]>(get(), netns, `-d link show dev ${ifname}`);
    if (!l) throw new Error(`no ${ifname} in ${netns}`);
    return l;
  };
  // attachment state; lock files come and go with the agent's reconciles
  const stateFiles = (n: LabNode): string[] => filesUnder(`${n.dir}/state`).filter((f) => !f.endsWith('.lock')).sort();
  const podlegsLinks = async (n: LabNode): Promise<string[]> => (await linkNames(get(), n.nsName)).filter((x) => x.startsWith('pl'));

  beforeAll(async () => {
    root = rootSnapshot();
    lab = await Lab.create({ nodes: 2, underlay: 'ipv6' });
    for (const n of lab.nodes) agents.push(await startAgent(lab, n));
    pods.p1 = await addNfPod(lab, node(1), 'p1', [{ network: 'a', interface: 'net1', ips: ['10.100.0.1/24'] }]);
    // n2 names its VTEP explicitly, in a non-canonical spelling an admin may well write.
    const p2 = await lab.addPod(node(2), 'p2');
    const legs = [{ network: 'a', interface: 'net1', ips: ['10.100.0.2/24'] }];
    const conf = podConflist(lab, node(2), legs);
    conf.plugins[1].underlay = { interface: 'ul0', vtep: '2001:DB8:0::12' };
    const r = await lab.chain(p2, 'ADD', conf);
    if (r.code !== 0) throw new Error(`ADD p2 on n2 failed (${r.code}): ${r.stdout}${r.stderr}`);
    pods.p2 = { pod: p2, conf, legs };
  });

  afterAll(async () => {
    await destroyChecked(lab, root);
  });

  test('the lab underlay is IPv6 only: ul0 holds 2001:db8::1x/64 and no IPv4 address', async () => {
    for (const n of get().nodes) {
      const [ul0] = await ipJson<{ addr_info: { family: string; local: string; prefixlen: number; scope: string }[] }[]>(get(), n.nsName, 'addr show dev ul0');
      expect(ul0.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.family} ${a.local}/${a.prefixlen}`)).toEqual([`inet6 ${n.vtep}/64`]);
      expect(n.vtep).toBe(`2001:db8::${10 + n.index}`);
    }
  });

  test('the VXLAN device of each node uses its IPv6 VTEP as local address, on ul0, with MTU underlay - 70', async () => {
    for (const n of get().nodes) {
      const vx = await link(n.nsName, 'plvx100');
      expect(vx.linkinfo?.info_kind).toBe('vxlan');
      expect(vx.linkinfo?.info_data).toEqual(expect.objectContaining({ id: 100, local6: n.vtep, port: 4789, link: 'ul0' }));
      expect(vx.linkinfo?.info_data?.local).toBeUndefined();
      expect((await link(n.nsName, 'ul0')).mtu).toBe(UNDERLAY_MTU);
      expect(vx.mtu).toBe(LEG_MTU);
    }
  });

  test('leg MTU is underlay MTU - 70 in the pod, on the host side and in the ADD result', async () => {
    for (const p of Object.values(pods)) {
      expect((await link(p.pod.nsName, 'net1')).mtu).toBe(LEG_MTU);
      const hostIfs = (await linkNames(get(), p.pod.node.nsName)).filter((x) => /^pl[0-9a-f]{12}$/.test(x));
      expect(hostIfs).toHaveLength(1);
      expect((await link(p.pod.node.nsName, hostIfs[0])).mtu).toBe(LEG_MTU);
      const res = get().cachedResult(p.pod, 'nf') as unknown as CniResult;
      expect(res.interfaces?.find((i) => i.name === 'net1')).toEqual(expect.objectContaining({ mtu: LEG_MTU, sandbox: p.pod.netns }));
    }
  });

  test('flood lists hold the other node\'s IPv6 VTEP, and every FDB entry of the VXLAN device points at it', async () => {
    const l = get();
    for (const [self, other] of [[1, 2], [2, 1]]) {
      // n1 was ADDed first: it learns of p2 through its agent
      await waitUntil(`flood list of n${self}`, async () => JSON.stringify(await floodDsts(l, node(self), 100)) === JSON.stringify([node(other).vtep]), 30_000)
        .catch(async () => expect(await floodDsts(l, node(self), 100)).toEqual([node(other).vtep]));
      const rows = JSON.parse((await l.sh(`bridge -j fdb show dev plvx100`, { netns: node(self).nsName })).stdout || '[]') as FdbRow[];
      const remote = rows.filter((r) => r.dst !== undefined);
      expect(remote.length).toBeGreaterThan(0);
      expect([...new Set(remote.map((r) => r.dst))]).toEqual([node(other).vtep]);
    }
  });

  test('L2 across the nodes over the legs: unicast ARP, ping, and a full-size unfragmentable frame, carried in IPv6 on the underlay', async () => {
    const l = get();
    // VXLAN on n2's underlay, both ways (tcpdump decodes port 4789 as VXLAN)
    const tap = l.spawn(node(2).netns, ['tcpdump', '-l', '-n', '-i', 'ul0', 'udp port 4789']);
    await tap.waitFor('listening on ul0', 10_000);
    const mac2 = await macOf(l, pods.p2.pod.nsName, 'net1');
    const arp = await l.sh(`arping -c 2 -W 0.2 -w 5 -i net1 -t ${mac2} 10.100.0.2`, { netns: pods.p1.pod.nsName, allowFail: true });
    expect({ code: arp.code, out: arp.stdout }).toEqual(expect.objectContaining({ code: 0 }));
    expect(arp.stdout).toContain(`bytes from ${mac2} (10.100.0.2)`);
    for (const [from, ip] of [['p1', '10.100.0.2'], ['p2', '10.100.0.1']]) {
      const ping = await l.sh(`ping -n -c 3 -i 0.2 -W 2 -I net1 ${ip}`, { netns: pods[from].pod.nsName, allowFail: true });
      expect({ from, ip, code: ping.code, out: ping.stdout }).toEqual(expect.objectContaining({ code: 0 }));
    }
    // A packet of exactly the leg MTU with DF set (ICMP payload = MTU - 20 IPv4 - 8 ICMP): encapsulated it is 1500 bytes.
    const big = await l.sh(`ping -n -c 3 -i 0.2 -W 2 -M do -s ${LEG_MTU - 28} -I net1 10.100.0.2`, { netns: pods.p1.pod.nsName, allowFail: true });
    expect({ code: big.code, out: big.stdout }).toEqual(expect.objectContaining({ code: 0 }));
    expect(big.stdout).toContain(`${LEG_MTU - 28}(${LEG_MTU}) bytes of data`);
    expect(big.stdout).toMatch(/3 packets transmitted, 3 received/);
    const seen = await tap.waitFor(/IP6 2001:db8::11\.\d+ > 2001:db8::12\.4789: VXLAN.*vni 100/, 10_000);
    await tap.kill();
    expect(seen).not.toMatch(/^\S+ IP /m); // nothing over IPv4
  });

  test('a network asking for more than underlay - 70 is refused with code 7 naming the figure; nothing changes on the node', async () => {
    const l = get();
    const before = { links: await podlegsLinks(node(1)), state: stateFiles(node(1)), registry: filesUnder(l.registryDir).sort() };
    const pod = await l.addPod(node(1), 'big');
    const conf = podConflist(l, node(1), [{ network: 'jumbo', interface: 'net1', ips: ['10.100.0.9/24'] }],
      { networks: { jumbo: { vni: 100, mtu: LEG_MTU + 1 } } });
    try {
      const r = await l.chain(pod, 'ADD', conf);
      expect(r.code).not.toBe(0);
      expect(r.json).toEqual(expect.objectContaining({
        code: 7, msg: `network jumbo asks for MTU ${LEG_MTU + 1}, but the underlay allows at most ${LEG_MTU} (underlay MTU ${UNDERLAY_MTU} - 70 for VXLAN over IPv6)`,
      }));
      expect(await linkNames(l, pod.nsName)).toEqual(['eth0', 'lo']); // ptp's eth0 only
      expect({ links: await podlegsLinks(node(1)), state: stateFiles(node(1)), registry: filesUnder(l.registryDir).sort() })
        .toEqual(before);
      // exactly the limit is fine
      const ok = podConflist(l, node(1), [{ network: 'jumbo', interface: 'net1', ips: ['10.100.0.9/24'] }],
        { networks: { jumbo: { vni: 100, mtu: LEG_MTU } } });
      await l.chain(pod, 'DEL', conf);
      const r2 = await l.chain(pod, 'ADD', ok);
      expect({ code: r2.code, out: r2.stdout }).toEqual(expect.objectContaining({ code: 0 }));
      expect((await link(pod.nsName, 'net1')).mtu).toBe(LEG_MTU);
      expect((await l.chain(pod, 'DEL', ok)).code).toBe(0);
    } finally {
      await l.chain(pod, 'DEL', conf);
      await l.removePod(pod);
    }
    expect(await podlegsLinks(node(1))).toEqual(before.links);
  });

  test('CHECK passes on both nodes', async () => {
    for (const p of Object.values(pods)) {
      const r = await checkPodlegs(get(), p);
      expect({ pod: p.pod.name, code: r.code, out: r.stdout }).toEqual(expect.objectContaining({ code: 0, out: '' }));
    }
  });

  test('DEL: the other node drops its flood entry, nothing is left behind, agents stop cleanly', async () => {
    const l = get();
    await delNfPod(l, pods.p2);
    await waitUntil('n1 flood list empty', async () => JSON.stringify(await floodDsts(l, node(1), 100)) === '[]', 30_000)
      .catch(async () => expect(await floodDsts(l, node(1), 100)).toEqual([]));
    // The agent that served the DEL removes the emptied segment after its grace period.
    await waitUntil('n2 segment removed', async () => (await podlegsLinks(node(2))).length === 0, 30_000)
      .catch(async () => expect(await podlegsLinks(node(2))).toEqual([]));
    await delNfPod(l, pods.p1);
    expect(await settledLeftovers(l)).toEqual([]);
    for (const a of agents) {
      expect(a.running()).toBe(true);
      await a.kill();
      expect(await a.exited).toEqual({ code: 0, signal: null });
      expect(agentProblems(a)).toEqual([]);
    }
  });
});
