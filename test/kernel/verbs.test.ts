// Every CNI verb × every cniVersion, podlegs chained after ptp (the stand-in for
// Cilium), against the real kernel in lab namespaces. Plus rollback, DEL twice,
// DEL without netns, CHECK after sabotage and GC.
import * as fs from 'fs';
import * as path from 'path';
import { Lab, LabNode, LabPod, CniOutcome, leakCheck } from '../lab/lab';

const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
type V = (typeof VERSIONS)[number];
const atLeast = (v: V, min: V): boolean => VERSIONS.indexOf(v) >= VERSIONS.indexOf(min);

let lab: Lab;
let node: LabNode;

beforeAll(async () => {
  lab = await Lab.create({ nodes: 2 });
  node = lab.nodes[0];
}, 60_000);
afterAll(async () => {
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 60_000);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function podlegs(n: LabNode, extra: Json = {}): Json {
  return {
    type: 'podlegs',
    underlay: { interface: 'ul0' },
    registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(n.dir, 'state'),
    log: { file: path.join(n.dir, 'podlegs.log'), level: 'debug' },
    networks: {
      'vrrp-a': { vni: 100 },
      'nf-b': { vni: 200, mtu: 1400, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: path.join(n.dir, 'ipam-legs') } },
    },
    legs: [
      { network: 'vrrp-a', interface: 'net1', ips: ['10.100.0.11/24'], mac: '02:00:5e:00:01:0b' },
      { network: 'nf-b', interface: 'net2' },
    ],
    ...extra,
  };
}

const ptpOnly = (v: string, n: LabNode): Json => ({ cniVersion: v, name: 'lab', plugins: [lab.ptpPlugin(n)] });

async function call(command: string, v: string, pod: LabPod, conf: Json, prevResult?: unknown): Promise<CniOutcome> {
  return lab.exec(pod.node, 'podlegs', { command: command as 'ADD', pod, conf: { cniVersion: v, name: 'lab', ...conf, ...(prevResult ? { prevResult } : {}) } });
}

const ok = (o: CniOutcome): CniOutcome => {
  if (o.code !== 0) throw new Error(`exit ${o.code}: ${o.stdout} ${o.stderr}`);
  return o;
};

async function links(netns: string): Promise<{ ifname: string; mtu: number; address: string; master?: string; addr_info?: { local: string; prefixlen: number }[] }[]> {
  return JSON.parse((await lab.sh('ip -j addr show', { netns })).stdout);
}
const podlegsLinks = async (n: LabNode): Promise<string[]> => (await links(n.nsName)).map((l) => l.ifname).filter((x) => /^pl/.test(x));
const filesUnder = (dir: string): string[] => {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath ?? d.path, d.name));
};
const legAllocations = (n: LabNode): string[] => filesUnder(path.join(n.dir, 'ipam-legs')).filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f));

describe.each(VERSIONS.map((v) => [v]))('cniVersion %s chained after ptp', (v) => {
  let pod: LabPod;
  let prev: Json;
  let result: Json;

  beforeAll(async () => {
    pod = await lab.addPod(node, `v${v.replace(/\./g, '')}`);
  });
  afterAll(async () => { await lab.removePod(pod); });

  it('ADD appends both legs and leaves eth0 as ptp made it', async () => {
    prev = ok(await lab.chain(pod, 'ADD', ptpOnly(v, node))).json as Json;
    result = ok(await call('ADD', v, pod, podlegs(node), prev)).json as Json;
    expect(result.cniVersion).toBe(v);
    expect(result.interfaces.slice(0, prev.interfaces.length)).toEqual(prev.interfaces);
    expect(result.ips.slice(0, prev.ips.length)).toEqual(prev.ips);
    expect(result.routes).toEqual(prev.routes);
    const [net1, net2] = result.interfaces.slice(prev.interfaces.length);
    expect(net1).toMatchObject({ name: 'net1', mac: '02:00:5e:00:01:0b', sandbox: pod.netns });
    expect(net2).toMatchObject({ name: 'net2', sandbox: pod.netns });
    expect(net2.mtu !== undefined).toBe(v === '1.1.0');
    const legIps = result.ips.slice(prev.ips.length);
    expect(legIps[0].address).toBe('10.100.0.11/24');
    expect(legIps[1]).toMatchObject({ address: expect.stringMatching(/^10\.30\.0\.\d+\/24$/), gateway: '10.30.0.1' });
    expect(legIps.map((i: Json) => i.interface)).toEqual([prev.interfaces.length, prev.interfaces.length + 1]);
    expect(legIps.every((i: Json) => (i.version !== undefined) === !atLeast(v, '1.0.0'))).toBe(true);
  });

  it('the kernel has the legs: names, MAC, MTU, addresses, enslaved host sides', async () => {
    const inPod = await links(pod.nsName);
    const net1 = inPod.find((l) => l.ifname === 'net1')!;
    const net2 = inPod.find((l) => l.ifname === 'net2')!;
    expect(net1.address).toBe('02:00:5e:00:01:0b');
    expect(net1.mtu).toBe(1450); // underlay 1500 - 50
    expect(net2.mtu).toBe(1400); // network asks lower
    expect(net1.addr_info!.some((a) => a.local === '10.100.0.11' && a.prefixlen === 24)).toBe(true);
    const allocated = result.ips[prev.ips.length + 1].address.split('/')[0];
    expect(net2.addr_info!.some((a) => a.local === allocated)).toBe(true);
    expect(inPod.find((l) => l.ifname === 'eth0')).toBeDefined();
    const onNode = await links(node.nsName);
    expect(onNode.filter((l) => l.master === 'plbr100').map((l) => l.ifname).sort()).toEqual(expect.arrayContaining(['plvx100']));
    expect(onNode.filter((l) => l.master === 'plbr100')).toHaveLength(2);
    expect(onNode.filter((l) => l.master === 'plbr200')).toHaveLength(2);
    const vx = JSON.parse((await lab.sh('ip -j -d link show plvx100', { netns: node.nsName })).stdout)[0];
    expect(vx.linkinfo.info_data).toMatchObject({ id: 100, local: node.vtep, port: 4789, learning: false });
  });

  it(`CHECK ${atLeast(v, '0.4.0') ? 'passes' : 'is refused for 0.3.x'}`, async () => {
    const o = await call('CHECK', v, pod, podlegs(node), result);
    if (atLeast(v, '0.4.0')) ok(o);
    else expect([o.code, (o.json as Json).code]).toEqual([1, 1]);
  });

  it(`STATUS ${v === '1.1.0' ? 'reports a usable underlay' : 'needs 1.1.0'}`, async () => {
    const o = await lab.exec(node, 'podlegs', { command: 'STATUS', conf: { cniVersion: v, name: 'lab', ...podlegs(node) } });
    if (v === '1.1.0') ok(o);
    else expect((o.json as Json).code).toBe(1);
  });

  it(`GC ${v === '1.1.0' ? 'keeps a valid attachment' : 'needs 1.1.0'}`, async () => {
    const o = await lab.exec(node, 'podlegs', { command: 'GC', conf: { cniVersion: v, name: 'lab', ...podlegs(node), 'cni.dev/valid-attachments': [{ containerID: pod.containerId, ifname: 'eth0' }] } });
    if (v === '1.1.0') ok(o);
    else expect((o.json as Json).code).toBe(1);
    expect((await links(pod.nsName)).map((l) => l.ifname)).toEqual(expect.arrayContaining(['net1', 'net2']));
  });

  it('VERSION lists every supported version', async () => {
    const o = ok(await lab.exec(node, 'podlegs', { command: 'VERSION', conf: { cniVersion: v } }));
    expect((o.json as Json).supportedVersions).toEqual(expect.arrayContaining([...VERSIONS]));
    expect((o.json as Json).cniVersion).toBe(v);
  });

  it('DEL removes everything, and a second DEL is still fine', async () => {
    ok(await call('DEL', v, pod, podlegs(node), atLeast(v, '0.4.0') ? result : undefined));
    ok(await call('DEL', v, pod, podlegs(node)));
    ok(await lab.chain(pod, 'DEL', ptpOnly(v, node)));
    expect(await podlegsLinks(node)).toEqual([]);
    expect((await links(pod.nsName)).map((l) => l.ifname)).toEqual(['lo']);
    expect(filesUnder(lab.registryDir)).toEqual([]);
    expect(filesUnder(path.join(node.dir, 'state', 'attachments'))).toEqual([]);
    expect(legAllocations(node)).toEqual([]);
  });
});

describe('failure paths', () => {
  const v = '1.0.0';

  it('ADD is all-or-nothing: a leg failing midway undoes the legs before it', async () => {
    const pod = await lab.addPod(node, 'rollback');
    // Leg 2's IPAM fails for real (static IPAM with an address it cannot parse) after leg 1
    // got its veth, segment, host-local address and registry entry.
    const conf = podlegs(node, {
      networks: {
        first: { vni: 300, ipam: { type: 'host-local', subnet: '10.31.0.0/24', dataDir: path.join(node.dir, 'ipam-legs') } },
        second: { vni: 301, ipam: { type: 'static', addresses: [{ address: 'not-an-ip' }] } },
      },
      legs: [{ network: 'first', interface: 'net1' }, { network: 'second', interface: 'net2' }],
    });
    const o = await call('ADD', v, pod, conf);
    expect(o.code).not.toBe(0);
    expect(o.json).toMatchObject({ code: 102 });
    expect((o.json as Json).msg).toMatch(/static/);
    expect(await podlegsLinks(node)).toEqual([]);
    expect((await links(pod.nsName)).map((l) => l.ifname)).toEqual(['lo']);
    expect(filesUnder(lab.registryDir)).toEqual([]);
    expect(filesUnder(path.join(node.dir, 'state', 'attachments'))).toEqual([]);
    expect(legAllocations(node)).toEqual([]);
    await lab.removePod(pod);
  });

  it('DEL works after the netns is gone', async () => {
    const pod = await lab.addPod(node, 'gone');
    ok(await call('ADD', v, pod, podlegs(node)));
    await lab.removePod(pod);
    ok(await call('DEL', v, pod, podlegs(node)));
    expect(await podlegsLinks(node)).toEqual([]);
    expect(filesUnder(lab.registryDir)).toEqual([]);
    expect(legAllocations(node)).toEqual([]);
  });

  it('CHECK fails once a leg was removed by hand', async () => {
    const pod = await lab.addPod(node, 'sabotage');
    const r = ok(await call('ADD', v, pod, podlegs(node))).json as Json;
    ok(await call('CHECK', v, pod, podlegs(node), r));
    await lab.sh('ip link del net1', { netns: pod.nsName });
    const o = await call('CHECK', v, pod, podlegs(node), r);
    expect(o.json).toMatchObject({ code: 104 });
    expect((o.json as Json).msg).toMatch(/net1/);
    ok(await call('DEL', v, pod, podlegs(node)));
    await lab.removePod(pod);
    expect(await podlegsLinks(node)).toEqual([]);
  });

  it('ADD refuses a leg name that exists in the pod, touching nothing', async () => {
    const pod = await lab.addPod(node, 'taken');
    await lab.sh('ip link add net2 type veth peer name other', { netns: pod.nsName });
    const o = await call('ADD', v, pod, podlegs(node));
    expect(o.json).toMatchObject({ code: 101 });
    expect(await podlegsLinks(node)).toEqual([]);
    await lab.removePod(pod);
  });

  it('GC removes attachments missing from cni.dev/valid-attachments and keeps the rest', async () => {
    const keep = await lab.addPod(node, 'gckeep');
    const drop = await lab.addPod(node, 'gcdrop');
    const legsFor = (ip: string): Json => podlegs(node, { legs: [{ network: 'vrrp-a', interface: 'net1', ips: [ip] }, { network: 'nf-b', interface: 'net2' }] });
    ok(await call('ADD', '1.1.0', keep, legsFor('10.100.0.21/24')));
    ok(await call('ADD', '1.1.0', drop, legsFor('10.100.0.22/24')));
    expect(filesUnder(lab.registryDir)).toHaveLength(4);
    await lab.removePod(drop); // the runtime lost it without DEL
    const gc = await lab.exec(node, 'podlegs', {
      command: 'GC',
      conf: { cniVersion: '1.1.0', name: 'lab', ...podlegs(node), 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] },
    });
    ok(gc);
    const reg = filesUnder(lab.registryDir);
    expect(reg).toHaveLength(2);
    expect(reg.every((f) => f.includes(keep.containerId))).toBe(true);
    expect(filesUnder(path.join(node.dir, 'state', 'attachments')).map((f) => path.basename(f))).toEqual([`${keep.containerId}_eth0.json`]);
    expect(legAllocations(node)).toHaveLength(1);
    expect((await links(keep.nsName)).map((l) => l.ifname).sort()).toEqual(['lo', 'net1', 'net2']);
    ok(await call('DEL', '1.1.0', keep, podlegs(node)));
    await lab.removePod(keep);
    expect(await podlegsLinks(node)).toEqual([]);
  });
});
