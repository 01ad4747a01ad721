// Multus delegate mode: Multus runs podlegs as an ordinary (non-chained)
// plugin with one NAD's config and CNI_IFNAME=net1; node settings come from
// the node config file.
import * as fs from 'fs';
import * as path from 'path';
import { Lab, leakCheck } from '../lab/lab';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
let lab: Lab;

beforeAll(async () => { lab = await Lab.create({ nodes: 1 }); }, 60_000);
afterAll(async () => {
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

it.each(['0.4.0', '1.0.0', '1.1.0'])('attaches the one leg named CNI_IFNAME (cniVersion %s)', async (v) => {
  const node = lab.nodes[0];
  const nodeConf = path.join(node.dir, 'node.json');
  fs.writeFileSync(nodeConf, JSON.stringify({
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
  }));
  const pod = await lab.addPod(node, `mu${v.replace(/\./g, '')}`);
  const nad = { cniVersion: v, name: 'vrrp-a', type: 'podlegs', vni: 100, ipam: { type: 'static', addresses: [{ address: '10.100.0.5/24' }] } };
  const env = { PODLEGS_NODE_CONFIG: nodeConf };
  const add = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'net1', conf: nad, env });
  expect(add.code).toBe(0);
  const r = add.json as Json;
  expect(r.interfaces).toEqual([expect.objectContaining({ name: 'net1', sandbox: pod.netns })]);
  expect(r.ips).toEqual([expect.objectContaining({ address: '10.100.0.5/24', interface: 0 })]);
  const links = JSON.parse((await lab.sh('ip -j addr show net1', { netns: pod.nsName })).stdout);
  expect(links[0].addr_info.some((a: Json) => a.local === '10.100.0.5')).toBe(true);
  expect(fs.readdirSync(path.join(lab.registryDir, 'vni-100'))).toHaveLength(1);
  if (v !== '0.3.1') {
    const check = await lab.exec(node, 'podlegs', { command: 'CHECK', pod, ifname: 'net1', conf: { ...nad, prevResult: r }, env });
    expect(check.code).toBe(0);
  }
  const del = await lab.exec(node, 'podlegs', { command: 'DEL', pod, ifname: 'net1', conf: nad, env });
  expect(del.code).toBe(0);
  expect(fs.readdirSync(path.join(lab.registryDir, 'vni-100'))).toHaveLength(0);
  expect(JSON.parse((await lab.sh('ip -j link', { netns: node.nsName })).stdout).map((l: Json) => l.ifname).filter((n: string) => n.startsWith('pl'))).toEqual([]);
  await lab.removePod(pod);
});

it('refuses a delegate call whose CNI_IFNAME is eth0 (the primary network)', async () => {
  const node = lab.nodes[0];
  const pod = await lab.addPod(node, 'mueth');
  const out = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'eth0', conf: { cniVersion: '1.0.0', name: 'a', type: 'podlegs', vni: 7 }, env: { PODLEGS_NODE_CONFIG: '/nonexistent' } });
  expect(out.json).toMatchObject({ code: 7 });
  await lab.removePod(pod);
});
