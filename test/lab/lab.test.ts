/**
 * Exercises the lab harness with Debian's ptp plugin (the stand-in for Cilium) only.
 * Run as root: npx jest --selectProjects lab --runInBand test/lab/lab.test.ts
 */
import { existsSync } from 'node:fs';
import { Lab, LabPod, LabProcess, leakCheck, withLab } from './lab';
import { rootSnapshot, SEEN_MS } from './nf';

jest.setTimeout(180_000);

const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

interface IpAddrInfo { family: string; local: string; prefixlen: number }
interface IpLink { ifname: string; addr_info?: IpAddrInfo[] }
interface IpRoute { dst: string; gateway?: string; dev?: string; table?: string }
interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string }[];
}



const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

describe('lab harness (ptp only)', () => {
  let lab: Lab | undefined;
  let root: string[] = [];
  let tcpdump: LabProcess | undefined;
  const pods: LabPod[] = [];
  const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };

  beforeAll(async () => {
    root = rootSnapshot();
    lab = await Lab.create({ nodes: 3 });
    for (const node of lab.nodes) pods.push(await lab.addPod(node, `a${node.index}`));
  });

  afterAll(async () => {
    const prefix = lab?.prefix;
    await lab?.destroy();
    await lab?.destroy(); // idempotent
    if (tcpdump) expect(alive(tcpdump.pid)).toBe(false);
    expect(rootSnapshot()).toEqual(root);
    if (prefix) expect(await leakCheck(prefix)).toEqual([]);
  });

  test('topology: unique prefix, namespaces, underlay addresses', async () => {
    const l = get();
    expect(l.prefix).toMatch(/^pl[0-9a-f]{4}$/);
    expect(l.dir.startsWith(`/tmp/podlegs-lab-${l.prefix}-`)).toBe(true);
    expect(existsSync(l.registryDir)).toBe(true);
    expect(l.nodes.map((n) => [n.nsName, n.vtep])).toEqual([1, 2, 3].map((i) => [`${l.prefix}-n${i}`, `192.0.2.${10 + i}`]));
    for (const n of l.nodes) {
      expect(existsSync(n.netns)).toBe(true);
      const links = JSON.parse((await l.sh('ip -j addr', { netns: n.nsName })).stdout) as IpLink[];
      expect(links.map((x) => x.ifname).sort()).toEqual(['lo', 'ul0']);
      expect(links.find((x) => x.ifname === 'ul0')?.addr_info).toContainEqual(
        expect.objectContaining({ family: 'inet', local: n.vtep, prefixlen: 24 }));
    }
    expect(pods.map((p) => p.containerId)).toEqual(pods.map(() => expect.stringMatching(/^[0-9a-f]{64}$/)));
    expect(rootSnapshot()).toEqual(root);
  });

  test('nodes ping each other over the underlay; spawned tcpdump sees it', async () => {
    const l = get();
    const [n1, n2] = l.nodes;
    tcpdump = l.spawn(n1.netns, ['tcpdump', '-l', '-n', '-i', 'ul0', 'icmp']);
    await tcpdump.waitFor('listening on ul0', SEEN_MS);
    await Promise.all(l.nodes.flatMap((a) => l.nodes.filter((b) => b !== a)
      .map((b) => l.sh(`ping -c 2 -i 0.2 -W 2 ${b.vtep}`, { netns: a.nsName }))));
    await tcpdump.waitFor(`${n2.vtep} > ${n1.vtep}: ICMP echo request`, SEEN_MS);
    // tcpdump is left running on purpose: destroy() must end it (checked in afterAll).
  });

  test('exec: ptp VERSION tops out at 1.0.0; a direct 1.1.0 ADD is refused (hence the relabel in chain)', async () => {
    const l = get();
    const v = await l.exec(l.nodes[0], 'ptp', { command: 'VERSION', conf: { cniVersion: '1.0.0' } });
    expect(v.code).toBe(0);
    expect((v.json as { supportedVersions: string[] }).supportedVersions).toContain('1.0.0');
    const add = await l.exec(l.nodes[0], 'ptp', {
      command: 'ADD', pod: pods[0], conf: { ...l.ptpPlugin(l.nodes[0]), name: 'direct', cniVersion: '1.1.0' },
    });
    expect(add.code).not.toBe(0);
    expect(add.json).toEqual(expect.objectContaining({ code: 1 })); // CNI error: incompatible version
  });

  test.each(VERSIONS)('conflist [ptp] cniVersion %s: ADD, pod reaches its node, CHECK, DEL', async (version) => {
    const l = get();
    const lists = pods.map((p) => ({ cniVersion: version, name: 'lab-ptp', plugins: [l.ptpPlugin(p.node)] }));
    await Promise.all(pods.map(async (pod, i) => {
      const add = await l.chain(pod, 'ADD', lists[i]);
      expect(add).toEqual(expect.objectContaining({ code: 0 }));
      const res = add.json as CniResult;
      expect(res.cniVersion).toBe(version);
      expect(l.cachedResult(pod, 'lab-ptp')).toEqual(res);
      expect(res.ips).toHaveLength(1);
      const { address, gateway } = res.ips[0];
      if (version === '0.3.1') expect(res.ips[0].version).toBe('4');
      const [ip, plen] = address.split('/');
      expect(ip.startsWith(`10.10.${pod.node.index}.`)).toBe(true);
      expect(gateway).toBe(`10.10.${pod.node.index}.1`);

      const eth0 = JSON.parse((await l.sh('ip -j addr show dev eth0', { netns: pod.nsName })).stdout) as IpLink[];
      expect(eth0[0].addr_info).toContainEqual(expect.objectContaining({ family: 'inet', local: ip, prefixlen: Number(plen) }));
      const def = JSON.parse((await l.sh('ip -j route show default', { netns: pod.nsName })).stdout) as IpRoute[];
      expect(def).toEqual([expect.objectContaining({ gateway, dev: 'eth0' })]);
      // the node side of the ptp link, then the node's underlay address (routed by the node)
      await l.sh(`ping -c 3 -i 0.2 -W 2 ${gateway}`, { netns: pod.nsName });
      await l.sh(`ping -c 1 -W 2 ${pod.node.vtep}`, { netns: pod.nsName });

      if (version === '0.3.1') {
        await expect(l.chain(pod, 'CHECK', lists[i])).rejects.toThrow(/does not support CHECK/);
      } else {
        expect(await l.chain(pod, 'CHECK', lists[i])).toEqual(expect.objectContaining({ code: 0 }));
      }
      expect(await l.chain(pod, 'DEL', lists[i])).toEqual(expect.objectContaining({ code: 0, stdout: '' }));
      expect(l.cachedResult(pod, 'lab-ptp')).toBeUndefined();
      const podLinks = JSON.parse((await l.sh('ip -j link', { netns: pod.nsName })).stdout) as IpLink[];
      expect(podLinks.map((x) => x.ifname)).toEqual(['lo']);
      const nodeLinks = JSON.parse((await l.sh('ip -j link', { netns: pod.node.nsName })).stdout) as IpLink[];
      expect(nodeLinks.map((x) => x.ifname).sort()).toEqual(['lo', 'ul0']);
      // DEL again (no cached result any more) must still succeed
      expect((await l.chain(pod, 'DEL', lists[i])).code).toBe(0);
    }));
    expect(rootSnapshot()).toEqual(root);
  });

  test('removePod deletes the pod namespace', async () => {
    const l = get();
    const extra = await l.addPod(l.nodes[0], 'tmp');
    const add = await l.chain(extra, 'ADD', { cniVersion: '1.0.0', name: 'lab-ptp', plugins: [l.ptpPlugin(l.nodes[0])] });
    expect(add.code).toBe(0);
    await l.removePod(extra);
    expect(existsSync(extra.netns)).toBe(false);
  });
});

test('withLab destroys the lab and its processes when the body throws', async () => {
  let prefix = '';
  let pids: number[] = [];
  await expect(withLab({ nodes: 1, sharedDir: true }, async (l) => {
    prefix = l.prefix;
    const pod = await l.addPod(l.nodes[0], 'x');
    pids = [l.spawn(pod.netns, ['sleep', '600']).pid, l.spawn(undefined, ['sleep', '600']).pid];
    // a grandchild in the node netns the lab never saw directly: destroy() finds it by netns
    await l.sh('setsid sleep 600 </dev/null >/dev/null 2>&1 &', { netns: l.nodes[0].nsName });
    expect(pids.every(alive)).toBe(true);
    throw new Error('boom');
  })).rejects.toThrow('boom');
  expect(pids.some(alive)).toBe(false);
  expect(await leakCheck(prefix)).toEqual([]);
});
