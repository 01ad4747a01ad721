// The non-VLAN half of a live trunk edit, against this kernel (clsact and cls_bpf, no 8021q):
// the trunk filter's program is swapped in place (changeTrunkVlans → replaceIngressBpf) while
// untagged frames flow through it — a 10 ms ping loses nothing over a hundred swaps, the veth
// keeps exactly one filter (same pref, the last program), the new program is the one in force
// (native off → the ping stops), and a sub-interface name held by another device is refused
// before anything changes. The VLAN half runs in the VM suite (test/vm/trunk.test.ts).
import { Lab, LabNode, LabPod, leakCheck } from '../lab/lab';
import { Kernel } from '../../overlay/kernel/kernel';
import { changeTrunkVlans } from '../../overlay/trunk-leg';
import { describeTrunkFilter, trunkFilterProgram } from '../../overlay/trunk-filter';
import { hostVethName, trunkVlanName } from '../../overlay/names';

const root = process.getuid?.() === 0;
const suite = root ? describe : describe.skip;

let lab: Lab;
let node: LabNode;
let pod: LabPod;
let k: Kernel;
let hostIf: string;

suite('trunk filter swapped in place (changeTrunkVlans without VLAN devices)', () => {
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1 });
    node = lab.nodes[0];
    pod = await lab.addPod(node, 'nf');
    k = Kernel.open(node.netns);
    hostIf = hostVethName(pod.containerId, 'eth0', 'net1');
    const host = await k.createVeth(hostIf, 'net1', pod.netns, { mtu: 1450 });
    await k.addClsact(host.index);
    await k.addIngressBpf(host.index, trunkFilterProgram([10, 20], true));
    await lab.sh(`ip addr add 10.9.0.1/24 dev ${hostIf} && ip link set ${hostIf} up`, { netns: node.nsName });
    await lab.sh('ip addr add 10.9.0.2/24 dev net1 && ip link set net1 up', { netns: pod.nsName });
    await lab.sh('ping -n -c 1 -W 5 10.9.0.1', { netns: pod.nsName });
  }, 60_000);

  afterAll(async () => {
    k?.close();
    await lab?.destroy();
    expect(await leakCheck(lab?.prefix)).toEqual([]);
  }, 60_000);

  const index = async (): Promise<number> => (await k.linkByName(hostIf))!.index;

  it('a hundred swaps under a 10 ms ping: nothing lost, one filter left, the last program in force', async () => {
    const ping = lab.spawn(pod.netns, ['ping', '-n', '-q', '-i', '0.01', '-c', '400', '-w', '60', '10.9.0.1']);
    let last: number[] = [];
    for (let i = 0; i < 100; i++) {
      last = [10, 20 + (i % 7), 100 + i, ...(i % 2 ? [4094] : [])];
      await changeTrunkVlans(k, hostIf, { add: [], retarget: [], vids: last, native: true });
    }
    expect(ping.running()).toBe(true); // the swaps happened while it ran
    await ping.exited;
    expect(ping.stdout()).toMatch(/400 packets transmitted, 400 received/);
    const filters = await k.ingressBpf(await index());
    expect(filters.map((f) => [f.pref, f.directAction])).toEqual([[1, true]]);
    expect(describeTrunkFilter(filters[0].prog)).toEqual({ vids: [...last].sort((a, b) => a - b), native: true });
  }, 120_000);

  it('the swapped-in program is the one the kernel runs: untagged dropped once native is off, passed again after', async () => {
    await changeTrunkVlans(k, hostIf, { add: [], retarget: [], vids: [10], native: false });
    const stats = async (): Promise<string> => (await lab.sh(`tc -s qdisc show dev ${hostIf}`, { netns: node.nsName })).stdout;
    const dropped = (s: string): number => Number(/qdisc clsact[^]*?dropped (\d+)/.exec(s)?.[1] ?? 0);
    const before = dropped(await stats());
    expect((await lab.sh('ping -n -c 3 -i 0.2 -W 1 10.9.0.1', { netns: pod.nsName, allowFail: true })).code).not.toBe(0);
    expect(dropped(await stats())).toBeGreaterThanOrEqual(before + 3);
    await changeTrunkVlans(k, hostIf, { add: [], retarget: [], vids: [10], native: true });
    expect((await lab.sh('ping -n -c 1 -W 5 10.9.0.1', { netns: pod.nsName, allowFail: true })).code).toBe(0);
  });

  it('refuses an added VLAN whose sub-interface name another device holds, before changing the filter', async () => {
    const taken = trunkVlanName(hostIf, 30);
    await lab.sh(`ip link add ${taken} type veth peer name ${taken}p`, { netns: node.nsName });
    const bridge = await k.createBridge(`plbr${40000 + (process.pid % 1000)}`);
    const seg = { vni: 1, bridge, vxlan: bridge };
    await expect(changeTrunkVlans(k, hostIf, { add: [{ vid: 30, hostIf: taken, mtu: 1450, segment: seg }], retarget: [], vids: [10, 30], native: true }))
      .rejects.toThrow(`${taken} exists on this node but is not VLAN 30 of ${hostIf}`);
    expect(describeTrunkFilter((await k.ingressBpf(await index()))[0].prog)).toEqual({ vids: [10], native: true });
    expect((await k.linkByName(taken))?.master).toBeUndefined();
    await expect(changeTrunkVlans(k, 'pl000000000000', { add: [], retarget: [], vids: [10], native: true })).rejects.toThrow(/pl000000000000 of the trunk is missing/);
  });
});
