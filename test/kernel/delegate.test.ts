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

it.each(['0.3.1', '0.4.0', '1.0.0', '1.1.0'])('attaches the one leg named CNI_IFNAME (cniVersion %s)', async (v) => {
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
  // CHECK exists from 0.4.0 on; a 0.3.1 config gets "incompatible version" (code 1).
  const check = await lab.exec(node, 'podlegs', { command: 'CHECK', pod, ifname: 'net1', conf: { ...nad, prevResult: r }, env });
  if (v === '0.3.1') expect(check.json).toMatchObject({ code: 1 });
  else expect(check.code).toBe(0);
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

// What Multus sends for a NAD declaring {"capabilities": {"ips": true, "mac": true}} and a
// selection element with ips/mac: runtimeConfig, and the K8S_* CNI_ARGS it builds from kubelet's.
const MULTUS_ARGS = 'IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pa;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=u-1';
function nodeConfFile(): string {
  const node = lab.nodes[0];
  const file = path.join(node.dir, 'node.json');
  fs.writeFileSync(file, JSON.stringify({
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(node.dir, 'state'), log: { file: path.join(node.dir, 'podlegs.log'), level: 'debug' },
  }));
  return file;
}
const hostLegs = async (): Promise<string[]> =>
  JSON.parse((await lab.sh('ip -j link', { netns: lab.nodes[0].nsName })).stdout).map((l: Json) => l.ifname).filter((n: string) => n.startsWith('pl'));

it('honours runtimeConfig ips and mac (they replace the NAD\'s IPAM), as Multus passes them from the selection', async () => {
  const node = lab.nodes[0];
  const env = { PODLEGS_NODE_CONFIG: nodeConfFile() };
  const pod = await lab.addPod(node, 'murc');
  const nad = {
    cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, capabilities: { ips: true, mac: true },
    ipam: { type: 'static', addresses: [{ address: '10.100.0.5/24' }] },
    runtimeConfig: { ips: ['10.100.0.7/24'], mac: '02:00:5e:00:01:07' },
  };
  const add = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'net1', conf: nad, env, args: MULTUS_ARGS });
  expect(add.code).toBe(0);
  const r = add.json as Json;
  expect(r.interfaces).toEqual([expect.objectContaining({ name: 'net1', mac: '02:00:5e:00:01:07', sandbox: pod.netns })]);
  expect(r.ips).toEqual([expect.objectContaining({ address: '10.100.0.7/24', interface: 0 })]);
  const link = JSON.parse((await lab.sh('ip -j addr show net1', { netns: pod.nsName })).stdout)[0];
  expect(link.address).toBe('02:00:5e:00:01:07');
  expect(link.addr_info.filter((a: Json) => a.family === 'inet').map((a: Json) => `${a.local}/${a.prefixlen}`)).toEqual(['10.100.0.7/24']);
  const del = await lab.exec(node, 'podlegs', { command: 'DEL', pod, ifname: 'net1', conf: nad, env, args: MULTUS_ARGS });
  expect(del.code).toBe(0);
  expect(await hostLegs()).toEqual([]);
  await lab.removePod(pod);
});

it('refuses a runtimeConfig mac that is not a unicast MAC (code 7) and attaches nothing', async () => {
  const node = lab.nodes[0];
  const pod = await lab.addPod(node, 'murcbad');
  const nad = { cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, capabilities: { mac: true }, runtimeConfig: { mac: '01:00:5e:00:00:01' } };
  const add = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'net1', conf: nad, env: { PODLEGS_NODE_CONFIG: nodeConfFile() }, args: MULTUS_ARGS });
  expect(add.json).toMatchObject({ code: 7, msg: expect.stringContaining('runtimeConfig.mac') });
  expect(await hostLegs()).toEqual([]);
  await lab.removePod(pod);
});

it('IPAM sees the caller\'s context on ADD and DEL: CNI_ARGS, environment, runtimeConfig and args in its stdin', async () => {
  const node = lab.nodes[0];
  // An IPAM plugin that records what it is given, then lets Debian's static do the work.
  const bin = path.join(lab.dir, 'ipam-bin');
  const rec = path.join(lab.dir, 'ipam-rec');
  fs.mkdirSync(bin);
  fs.mkdirSync(rec);
  const staticBin = lab.findPlugin('static');
  fs.writeFileSync(path.join(bin, 'rec-static'), [
    '#!/bin/sh', 'in=$(cat)',
    `printf '%s' "$in" > ${rec}/$CNI_COMMAND.stdin`,
    `printf '%s' "$CNI_ARGS" > ${rec}/$CNI_COMMAND.args`,
    `printf '%s' "$PODLEGS_TEST_MARK" > ${rec}/$CNI_COMMAND.mark`,
    `printf '%s' "$in" | exec ${staticBin}`, '',
  ].join('\n'), { mode: 0o755 });
  const env = { PODLEGS_NODE_CONFIG: nodeConfFile(), CNI_PATH: `${bin}:${lab.cniPath.join(':')}`, PODLEGS_TEST_MARK: 'from-the-runtime' };
  const pod = await lab.addPod(node, 'muipam');
  const nad = {
    cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100, capabilities: { mac: true },
    ipam: { type: 'rec-static', addresses: [{ address: '10.100.0.9/24' }] },
    runtimeConfig: { mac: '02:00:5e:00:01:09' }, args: { cni: { role: 'master' } },
  };
  const add = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'net1', conf: nad, env, args: MULTUS_ARGS });
  expect(add.code).toBe(0);
  expect((add.json as Json).ips).toEqual([expect.objectContaining({ address: '10.100.0.9/24' })]);
  const del = await lab.exec(node, 'podlegs', { command: 'DEL', pod, ifname: 'net1', conf: nad, env, args: MULTUS_ARGS });
  expect(del.code).toBe(0);
  const pairs = (s: string): string[] => s.split(';').sort();
  for (const cmd of ['ADD', 'DEL']) {
    const stdin = JSON.parse(fs.readFileSync(path.join(rec, `${cmd}.stdin`), 'utf8'));
    expect(stdin).toMatchObject({ name: 'vrrp-a', cniVersion: '1.0.0', ipam: nad.ipam, runtimeConfig: nad.runtimeConfig, args: nad.args });
    expect(pairs(fs.readFileSync(path.join(rec, `${cmd}.args`), 'utf8'))).toEqual(pairs(MULTUS_ARGS));
    expect(fs.readFileSync(path.join(rec, `${cmd}.mark`), 'utf8')).toBe('from-the-runtime');
  }
  expect(await hostLegs()).toEqual([]);
  await lab.removePod(pod);
});
