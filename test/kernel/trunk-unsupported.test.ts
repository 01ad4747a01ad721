// On a kernel without 802.1Q VLAN devices (this project's build machines), STATUS and ADD of a
// trunk leg fail with a CNI error (50) that names the missing kernel feature, and change
// nothing; access legs keep working. On a kernel that has 8021q this file skips itself: the
// trunk suite (test/vm) covers that kernel.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, LabNode, leakCheck } from '../lab/lab';

function kernelHasVlan(): boolean {
  const ns = `pltv${process.pid}`;
  const r = spawnSync('sh', ['-c', `ip netns add ${ns} || exit 2
    ip -n ${ns} link add plva type veth peer name plvb && ip -n ${ns} link add link plva name plva.5 type vlan id 5
    r=$?; ip netns del ${ns}; exit $r`], { stdio: 'ignore' });
  return r.status === 0;
}
const lacksVlan = process.getuid?.() === 0 && !kernelHasVlan();
const suite = lacksVlan ? describe : describe.skip;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let lab: Lab;
let node: LabNode;

const entry = (legs: Json[]): Json => ({
  cniVersion: '1.1.0', name: 'nf', type: 'podlegs',
  underlay: { interface: 'ul0' },
  registry: { type: 'file', path: lab.registryDir },
  stateDir: path.join(node.dir, 'state'),
  log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
  networks: {
    a: { vni: 100 }, b: { vni: 200 }, m: { vni: 300 },
    t: { trunk: { vlans: [{ vid: 10, network: 'a' }, { vid: 20, network: 'b' }], nativeNetwork: 'm' } },
  },
  legs,
});

const files = (dir: string): string[] => {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
};
const links = async (netns: string): Promise<string[]> =>
  (JSON.parse((await lab.sh('ip -j link', { netns })).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();

suite('trunk legs on a kernel without 8021q', () => {
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1 });
    node = lab.nodes[0];
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    expect(await leakCheck(lab?.prefix)).toEqual([]);
  }, 60_000);

  it('STATUS fails with code 50 naming 8021q, and leaves no probe behind', async () => {
    const o = await lab.exec(node, 'podlegs', { command: 'STATUS', conf: entry([]) });
    expect(o.code).toBe(1);
    expect(o.json).toMatchObject({ code: 50 });
    const msg = (o.json as Json).msg as string;
    expect(msg).toMatch(/802\.1Q VLAN devices \(CONFIG_VLAN_8021Q, module 8021q\)/);
    expect(o.stdout.trim().split('\n')).toHaveLength(1);
    expect(await links(node.nsName)).toEqual(['lo', 'ul0']);
  });

  it('STATUS without trunk networks is unaffected', async () => {
    const conf = entry([]);
    delete conf.networks.t;
    const o = await lab.exec(node, 'podlegs', { command: 'STATUS', conf });
    expect([o.code, o.stdout]).toEqual([0, '']);
  });

  it('ADD of a trunk leg fails with code 50 naming 8021q and changes nothing', async () => {
    const pod = await lab.addPod(node, 'nf');
    const o = await lab.exec(node, 'podlegs', { command: 'ADD', pod, conf: entry([{ network: 't', interface: 'net1', ips: ['10.30.0.1/24'] }]) });
    expect(o.code).toBe(1);
    expect(o.json).toMatchObject({ code: 50, msg: expect.stringMatching(/8021q/) });
    expect((o.json as Json).details).toMatch(/modprobe 8021q/);
    expect(await links(node.nsName)).toEqual(['lo', 'ul0']);
    expect(await links(pod.nsName)).toEqual(['lo']);
    expect(files(path.join(node.dir, 'state', 'attachments'))).toEqual([]);
    expect(files(lab.registryDir)).toEqual([]);
    // DEL after the refused ADD is fine (nothing recorded).
    const del = await lab.exec(node, 'podlegs', { command: 'DEL', pod, conf: entry([{ network: 't', interface: 'net1' }]) });
    expect([del.code, del.stdout]).toEqual([0, '']);
    await lab.removePod(pod);
  });

  it('access legs of a config that also defines a trunk network still attach', async () => {
    const pod = await lab.addPod(node, 'acc');
    const conf = entry([{ network: 'a', interface: 'net1', ips: ['10.100.0.5/24'] }]);
    const o = await lab.exec(node, 'podlegs', { command: 'ADD', pod, conf });
    expect(o.code).toBe(0);
    expect(await links(pod.nsName)).toEqual(['lo', 'net1']);
    expect((await lab.exec(node, 'podlegs', { command: 'DEL', pod, conf })).code).toBe(0);
    expect(await links(node.nsName)).toEqual(['lo', 'ul0']);
    await lab.removePod(pod);
  });
});
