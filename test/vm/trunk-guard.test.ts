/**
 * The leg guard on trunk legs: each VLAN's guard sits on its 802.1Q sub-interface. Needs a
 * kernel with 8021q, clsact and cls_bpf (test/vm/run-trunk-suite.sh runs it natively or in the
 * VM); skips itself elsewhere.
 *
 * One node, [podlegs] pods, network a (VNI 100, security "enforce"), trunk t: VLAN 10 -> a.
 *   nf        trunk net1, net1.10 10.100.0.1 (its leg's security lists 10.100.0.1)
 *   mallory   trunk net1, net1.10 10.100.0.3 (its leg's security lists 10.100.0.3)
 *   victim    access leg on a, 10.100.0.2
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Lab, LabNode, LabPod, leakCheck } from '../lab/lab';
import { arpFrame, markerFrame, sendFrames } from '../lab/frames';
import { hostVethName, trunkVlanName } from '../../overlay/names';
import { CONVERGE_MS, SEEN_MS, sleep, waitUntil } from '../lab/nf';

jest.setTimeout(300_000);

function kernelHasTrunkFeatures(): boolean {
  if (process.getuid?.() !== 0) return false;
  const ns = `pltg${process.pid}`;
  const r = spawnSync('sh', ['-c', `ip netns add ${ns} || exit 1
    ip -n ${ns} link add plva type veth peer name plvb &&
    ip -n ${ns} link add link plva name plva.5 type vlan id 5 &&
    tc -n ${ns} qdisc add dev plva clsact &&
    tc -n ${ns} filter add dev plva ingress bpf da bytecode '1,6 0 0 0'
    r=$?; ip netns del ${ns}; exit $r`], { stdio: 'ignore' });
  return r.status === 0;
}
const suite = kernelHasTrunkFeatures() ? describe : describe.skip;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let lab: Lab;
let node: LabNode;
const NETWORKS = { a: { vni: 100, security: { mode: 'enforce' } }, t: { trunk: { vlans: [{ vid: 10, network: 'a' }] } } };
const entry = (legs: Json[]): Json => ({
  cniVersion: '1.1.0', name: 'nf', type: 'podlegs', underlay: { interface: 'ul0' },
  registry: { type: 'file', path: lab.registryDir }, stateDir: path.join(node.dir, 'state'),
  log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' }, networks: NETWORKS, legs,
});
const trunkLeg = (ip: string): Json[] => [{ network: 't', interface: 'net1', security: { mode: 'enforce', allowedAddresses: [ip] } }];
const pods: Record<string, { pod: LabPod; conf: Json; result: Json }> = {};

suite('leg guard on trunk VLANs', () => {
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1 });
    node = lab.nodes[0];
    const add = async (name: string, legs: Json[]): Promise<void> => {
      const pod = await lab.addPod(node, name);
      const conf = entry(legs);
      const r = await lab.exec(node, 'podlegs', { command: 'ADD', pod, conf });
      if (r.code !== 0) throw new Error(`ADD ${name}: ${r.stdout}${r.stderr}`);
      pods[name] = { pod, conf, result: r.json as Json };
    };
    await add('nf', trunkLeg('10.100.0.1'));
    await add('mallory', trunkLeg('10.100.0.3'));
    await add('victim', [{ network: 'a', interface: 'net1', ips: ['10.100.0.2/24'] }]);
    for (const [name, ip] of [['nf', '10.100.0.1'], ['mallory', '10.100.0.3']]) {
      await lab.sh(`ip link add link net1 name net1.10 type vlan id 10 && ip addr add ${ip}/24 dev net1.10 && ip link set net1.10 up`, { netns: pods[name].pod.nsName });
    }
  }, 120_000);

  afterAll(async () => {
    const prefix = lab?.prefix;
    await lab?.destroy();
    if (prefix) expect(await leakCheck(prefix)).toEqual([]);
  }, 120_000);

  const sub = (name: string): string => trunkVlanName(hostVethName(pods[name].pod.containerId, 'eth0', 'net1'), 10);
  async function drops(dev: string): Promise<number> {
    const m = /qdisc clsact[^]*?dropped (\d+)/.exec((await lab.sh(`tc -s qdisc show dev ${dev}`, { netns: node.nsName })).stdout);
    return m ? Number(m[1]) : -1;
  }

  test('the guard is on each VLAN sub-interface; CHECK passes; a declared address carries traffic', async () => {
    for (const name of ['nf', 'mallory']) {
      expect((await lab.sh(`tc filter show dev ${sub(name)} ingress`, { netns: node.nsName })).stdout).toMatch(/bpf .*direct-action/);
      const p = pods[name];
      const check = await lab.exec(node, 'podlegs', { command: 'CHECK', pod: p.pod, conf: { ...p.conf, prevResult: p.result } });
      expect({ name, code: check.code, out: check.stdout }).toEqual({ name, code: 0, out: '' });
    }
    await waitUntil('nf → victim over VLAN 10', async () => (await lab.sh('ping -c1 -W1 10.100.0.2', { netns: pods.nf.pod.nsName, allowFail: true })).code === 0, CONVERGE_MS);
  });

  test('spoofed frames sent on a trunk VLAN reach no one, and the VLAN guard counts them', async () => {
    const mac = (p: string): Promise<string> => lab.sh('cat /sys/class/net/net1/address', { netns: pods[p].pod.nsName }).then((r) => r.stdout.trim());
    const [victimMac, malloryMac] = [await mac('victim'), await mac('mallory')];
    const cap = lab.spawn(pods.victim.pod.netns, ['tcpdump', '-l', '-n', '-e', '-i', 'net1', 'arp or ether proto 0x88b5']);
    try {
      await cap.waitFor(/listening on/, SEEN_MS);
      const before = await drops(sub('mallory'));
      await sendFrames(lab, pods.mallory.pod, 'net1.10', [
        markerFrame(victimMac, 'SPOOF'),
        arpFrame({ ethSrc: malloryMac, sha: malloryMac, spa: '10.100.0.2' }),
        arpFrame({ ethSrc: malloryMac, sha: malloryMac, spa: '10.100.0.1' }),
      ]);
      await sendFrames(lab, pods.mallory.pod, 'net1.10', [arpFrame({ ethSrc: malloryMac, sha: malloryMac, spa: '10.100.0.3' })], 1);
      await waitUntil("mallory's own gratuitous ARP at the victim", async () => /Reply 10\.100\.0\.3 is-at/.test(cap.stdout()), CONVERGE_MS);
      await sleep(300);
      expect(await drops(sub('mallory'))).toBeGreaterThanOrEqual(before + 9);
    } finally {
      await cap.kill();
    }
    // (nf's own ARP replies to the victim may show up: only mallory's spoofed frames must not)
    expect(cap.stdout().split('\n').filter((l) => /0x88b5/.test(l) || new RegExp(`Reply 10\\.100\\.0\\.[12] is-at ${malloryMac}`).test(l))).toEqual([]);
  });

  test('DEL leaves no sub-interface, qdisc or filter', async () => {
    for (const p of Object.values(pods)) {
      const r = await lab.exec(node, 'podlegs', { command: 'DEL', pod: p.pod, conf: p.conf });
      expect([r.code, r.stdout]).toEqual([0, '']);
    }
    expect((await lab.sh('ip -br link; tc qdisc show', { netns: node.nsName })).stdout).not.toMatch(/pl[0-9a-f]{12}|clsact/);
  });
});
