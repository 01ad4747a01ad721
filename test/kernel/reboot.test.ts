// A node reboot: state, registry and IPAM files survive, every kernel object (pod netns, legs,
// segments) is gone. The runtime then DELs the old pods, ADDs new ones and GCs: all must work.
import * as fs from 'fs';
import * as path from 'path';
import { Lab, LabNode, CniOutcome, leakCheck } from '../lab/lab';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
let lab: Lab;
let node: LabNode;

beforeAll(async () => { lab = await Lab.create({ nodes: 1 }); node = lab.nodes[0]; }, 60_000);
afterAll(async () => {
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

const conf = (ip: string): Json => ({
  cniVersion: '1.1.0', name: 'lab', type: 'podlegs',
  underlay: { interface: 'ul0' },
  registry: { type: 'file', path: lab.registryDir },
  stateDir: path.join(node.dir, 'state'),
  log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
  networks: {
    'vrrp-a': { vni: 100 },
    'nf-b': { vni: 200, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: path.join(node.dir, 'ipam-legs') } },
  },
  legs: [{ network: 'vrrp-a', interface: 'net1', ips: [ip] }, { network: 'nf-b', interface: 'net2' }],
});
const ok = (o: CniOutcome): CniOutcome => {
  if (o.code !== 0) throw new Error(`exit ${o.code}: ${o.stdout} ${o.stderr}`);
  return o;
};
const filesUnder = (dir: string): string[] => !fs.existsSync(dir) ? [] :
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath ?? d.path, d.name));
const mentioning = (id: string): string[] =>
  [...filesUnder(lab.registryDir), ...filesUnder(path.join(node.dir, 'state')), ...filesUnder(path.join(node.dir, 'ipam-legs'))]
    .filter((f) => f.includes(id) || fs.readFileSync(f, 'utf8').includes(id));
const plLinks = async (): Promise<string[]> =>
  (JSON.parse((await lab.sh('ip -j link show', { netns: node.nsName })).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((x) => /^pl/.test(x));

it('after a reboot DEL of old pods succeeds and cleans files, a new ADD works, GC removes the rest', async () => {
  const a = await lab.addPod(node, 'rba');
  const b = await lab.addPod(node, 'rbb');
  ok(await lab.exec(node, 'podlegs', { command: 'ADD', pod: a, conf: conf('10.100.0.31/24') }));
  ok(await lab.exec(node, 'podlegs', { command: 'ADD', pod: b, conf: conf('10.100.0.32/24') }));
  expect(mentioning(a.containerId).length).toBeGreaterThan(0);

  // Reboot: pods' netns and every podlegs device of the node are gone; files stay.
  await lab.removePod(a);
  await lab.removePod(b);
  for (const l of await plLinks()) await lab.sh(`ip link del ${l}`, { netns: node.nsName, allowFail: true });
  expect(await plLinks()).toEqual([]);

  ok(await lab.exec(node, 'podlegs', { command: 'DEL', pod: a, conf: conf('10.100.0.31/24') }));
  expect(mentioning(a.containerId)).toEqual([]);

  const c = await lab.addPod(node, 'rbc');
  ok(await lab.exec(node, 'podlegs', { command: 'ADD', pod: c, conf: conf('10.100.0.33/24') }));
  expect((await plLinks()).length).toBeGreaterThan(0);

  ok(await lab.exec(node, 'podlegs', { command: 'GC', conf: { ...conf('10.100.0.33/24'), 'cni.dev/valid-attachments': [{ containerID: c.containerId, ifname: 'eth0' }] } }));
  expect(mentioning(b.containerId)).toEqual([]);
  expect(mentioning(c.containerId).length).toBeGreaterThan(0);

  ok(await lab.exec(node, 'podlegs', { command: 'DEL', pod: c, conf: conf('10.100.0.33/24') }));
  await lab.removePod(c);
  expect(await plLinks()).toEqual([]);
  expect(mentioning(c.containerId)).toEqual([]);
}, 120_000);
