// The agent's CNI socket against the real kernel, in lab namespaces: the same ADD/CHECK/DEL
// through the agent (thin client → agent → runCni) and in-process give identical results; with
// the agent down (no socket, or a stale one) the plugin runs the call itself; an agent killed
// while it serves an ADD, or hung, makes the client answer code 11 in bounded time, the
// runtime's DEL cleans up and the next ADD works; an ADD whose IPAM hangs does not stall the
// agent meanwhile; the socket is 0600; a second agent on a live
// socket is refused; and a call the agent serves never loads the bundle or a native addon.
import * as fs from 'fs';
import * as path from 'path';
import { CniOutcome, Lab, LabNode, LabPod, LabProcess, leakCheck } from '../lab/lab';
import { waitUntil } from '../support/wait';
import { CONVERGE_MS, floodDsts } from '../lab/nf';

jest.setTimeout(120_000);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let lab: Lab;
let node: LabNode;
let other: LabNode;
let agent: LabProcess | undefined;
let slowDir: string;
const REPORT_HOOK = path.join(__dirname, 'support', 'load-report.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const agentFile = (n: LabNode): string => path.join(n.dir, 'agent.json');

function nodeConf(n: LabNode): Json {
  return {
    underlay: { interface: 'ul0' }, registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(n.dir, 'state'), log: { file: path.join(n.dir, 'podlegs.log'), level: 'debug' },
  };
}
/** The podlegs entry; socket: where the plugin looks for the agent (a path nobody serves: in-process). */
function entry(n: LabNode, socket: string, legs: Json[], prevResult?: unknown): Json {
  return {
    cniVersion: '1.0.0', name: 'lab', type: 'podlegs', ...nodeConf(n), agent: { socket },
    networks: { a: { vni: 100 }, b: { vni: 200 }, s: { vni: 300, ipam: { type: 'slow-ipam' } } }, legs,
    ...(prevResult ? { prevResult } : {}),
  };
}
const LEGS = [
  { network: 'a', interface: 'net1', ips: ['10.100.0.5/24'], mac: '02:00:5e:00:01:05' },
  { network: 'b', interface: 'net2', ips: ['10.200.0.5/24'], mac: '02:00:5e:00:02:05' },
];
const noAgent = (n: LabNode): string => path.join(n.dir, 'nobody.sock');
/** The agent's grace period: segments a call it serves leaves without legs go this long after. */
const GRACE_S = 3;
const isSegmentDevice = (link: string): boolean => /^pl(br|vx)\d+ /.test(link);

async function startAgent(n: LabNode): Promise<LabProcess> {
  fs.writeFileSync(agentFile(n), JSON.stringify({ ...nodeConf(n), log: { level: 'info' }, agent: { socket: n.agentSocket, metricsAddress: '127.0.0.1:9750', gracePeriodSeconds: GRACE_S } }));
  const a = lab.spawn(n.netns, [lab.podlegsBin, 'agent', '--config', agentFile(n)], { env: { NODE_NAME: n.name } });
  await a.waitFor('agent started', 30_000);
  return a;
}

/** One plugin call as a runtime makes it, with the load report of the podlegs process. */
async function call(command: 'ADD' | 'DEL' | 'CHECK', pod: LabPod, conf: Json, env: Record<string, string> = {}): Promise<CniOutcome & { loaded: Json }> {
  const report = path.join(lab.dir, `load-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
  const r = await lab.exec(pod.node, 'podlegs', { command, pod, conf, env: { NODE_OPTIONS: `--require ${REPORT_HOOK}`, PODLEGS_LOAD_REPORT: report, CNI_PATH: `${slowDir}:${lab.cniPath.join(':')}`, ...env } });
  const loaded = fs.existsSync(report) ? JSON.parse(fs.readFileSync(report, 'utf8')) as Json : {};
  return { ...r, loaded };
}
const ok = <T extends CniOutcome>(o: T): T => {
  if (o.code !== 0) throw new Error(`exit ${o.code}: ${o.stdout} ${o.stderr}`);
  return o;
};
const servedByAgent = (o: { loaded: Json }): boolean => !(o.loaded.scripts as string[]).includes('podlegs.js');

/** What the node holds for podlegs: pl* links (name, kind, master), state and registry files with content. */
async function nodeState(n: LabNode): Promise<Json> {
  const links = (JSON.parse((await lab.sh('ip -d -j link show', { netns: n.nsName })).stdout) as Json[])
    .filter((l) => /^pl/.test(l.ifname)).map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? ''} ${l.master ?? ''}`).sort();
  const files = (dir: string): Json => Object.fromEntries((fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) as string[] : [])
    .map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile() && !/\.lock$/.test(f))
    .map((f) => [path.relative(dir, f), fs.readFileSync(f, 'utf8')]).sort());
  return { links, state: files(path.join(n.dir, 'state', 'attachments')), registry: files(lab.registryDir) };
}
/** After a DEL the agent served: the legs are gone at once, their segments once the agent's grace has passed. */
async function agentRemovesSegments(n: LabNode): Promise<void> {
  await waitUntil('the agent removes the emptied segments', async () => (await nodeState(n)).links.length === 0, GRACE_S * 1000 + 60_000, 100);
}
/** The agent's JSON log lines (stderr) with this message. */
const agentLines = (a: LabProcess, message: string): Json[] => a.stderr().split('\n').filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as Json).filter((j) => j.message === message);
async function podLinks(pod: LabPod): Promise<Json[]> {
  return (JSON.parse((await lab.sh('ip -j addr show', { netns: pod.nsName })).stdout) as Json[])
    .map((l) => ({ ifname: l.ifname, mac: l.address, mtu: l.mtu, addrs: (l.addr_info ?? []).map((a: Json) => `${a.local}/${a.prefixlen}`) }));
}

beforeAll(async () => {
  lab = await Lab.create({ nodes: 2 });
  [node, other] = lab.nodes;
  // An IPAM plugin that is slow while <dir>/slow exists: it writes its PID there, then sleeps.
  slowDir = path.join(lab.dir, 'cni-bin');
  fs.mkdirSync(slowDir, { recursive: true });
  fs.writeFileSync(path.join(slowDir, 'slow-ipam'), `#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  [ -n "$IPAM_MARK" ] && echo "$IPAM_MARK" > ${slowDir}/mark
  if [ -e ${slowDir}/slow ]; then echo $$ > ${slowDir}/slow; exec sleep 60; fi
  echo '{"cniVersion":"1.0.0","ips":[{"address":"10.30.0.9/24"}]}'
fi
`, { mode: 0o755 });
  agent = await startAgent(node);
}, 90_000);

afterAll(async () => {
  await agent?.kill();
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 90_000);

test('the agent socket is a socket of mode 0600', () => {
  const st = fs.statSync(node.agentSocket);
  expect(st.isSocket()).toBe(true);
  expect(st.mode & 0o777).toBe(0o600);
});

test('ADD, CHECK, DEL through the agent and in-process: same stdout, same node state, and the client loads neither bundle nor netlink', async () => {
  const pod = await lab.addPod(node, 'same');
  const prev = ok(await lab.chain(pod, 'ADD', { cniVersion: '1.0.0', name: 'lab', plugins: [lab.ptpPlugin(node)] })).json;
  const run = async (socket: string): Promise<Json> => {
    const add = ok(await call('ADD', pod, entry(node, socket, LEGS, prev)));
    const afterAdd = { node: await nodeState(node), pod: await podLinks(pod) };
    const check = ok(await call('CHECK', pod, entry(node, socket, LEGS, add.json)));
    const del = ok(await call('DEL', pod, entry(node, socket, LEGS, add.json)));
    const afterDel = { node: await nodeState(node), pod: await podLinks(pod) };
    return { add, check, del, afterAdd, afterDel };
  };
  const viaAgent = await run(node.agentSocket);
  // Served by the agent, DEL removes the legs; the segments they leave empty are the agent's to remove (after its grace).
  expect(viaAgent.afterDel.node.links.length).toBeGreaterThan(0);
  expect(viaAgent.afterDel.node.links.filter((l: string) => !isSegmentDevice(l))).toEqual([]);
  await agentRemovesSegments(node);
  const inProcess = await run(noAgent(node));
  expect(inProcess.afterDel.node.links).toEqual([]); // in-process: removed at once, in the DEL's own batch
  for (const verb of ['add', 'check', 'del']) {
    expect([verb, servedByAgent(viaAgent[verb]), servedByAgent(inProcess[verb])]).toEqual([verb, true, false]);
    expect(viaAgent[verb].stdout).toEqual(inProcess[verb].stdout);
  }
  expect(viaAgent.afterAdd).toEqual(inProcess.afterAdd);
  expect(viaAgent.afterAdd.node.links.length).toBeGreaterThan(0);
  expect({ ...viaAgent.afterDel, node: { ...viaAgent.afterDel.node, links: [] } }).toEqual(inProcess.afterDel);

  // The thin client: no bundle compiled, of natives only podlegs' own small addon (its socket
  // calls; never netlink's), no module file but the executable; in-process, the same hook sees
  // the bundle and netlink (so it can tell).
  const thin = viaAgent.add.loaded;
  expect(thin.scripts).toEqual([]);
  expect(thin.dlopen).toEqual([path.join(path.dirname(lab.podlegsBin), 'podlegs_netns.node')]);
  expect(thin.modules).toEqual([lab.podlegsBin]);
  expect(inProcess.add.loaded.scripts).toContain('podlegs.js');
  expect((inProcess.add.loaded.dlopen as string[]).some((f) => /netlink\.node$/.test(f))).toBe(true);
  console.log(`thin client: ${thin.builtins.length} node built-ins loaded; in-process ADD: ${inProcess.add.loaded.builtins.length} built-ins, ${inProcess.add.loaded.dlopen.length} addons`);
  await lab.chain(pod, 'DEL', { cniVersion: '1.0.0', name: 'lab', plugins: [lab.ptpPlugin(node)] });
  await lab.removePod(pod);
});

test('through the agent, IPAM gets the caller\'s environment and a Multus delegate call the caller\'s PODLEGS_NODE_CONFIG', async () => {
  const pod = await lab.addPod(node, 'env');
  // The IPAM plugin sees a variable only the caller has.
  const legs = [{ network: 's', interface: 'net3' }];
  const add = ok(await call('ADD', pod, entry(node, node.agentSocket, legs), { IPAM_MARK: 'from-the-runtime' }));
  expect(servedByAgent(add)).toBe(true);
  expect(fs.readFileSync(path.join(slowDir, 'mark'), 'utf8').trim()).toBe('from-the-runtime');
  ok(await call('DEL', pod, entry(node, node.agentSocket, legs, add.json)));

  // Multus hands over a NAD's config; the node-level fields (and agent.socket) come from the
  // node config file the caller names.
  const nodeFile = path.join(node.dir, 'node.json');
  fs.writeFileSync(nodeFile, JSON.stringify({ ...nodeConf(node), agent: { socket: node.agentSocket } }));
  const nad = { cniVersion: '1.0.0', name: 'vrrp-a', type: 'podlegs', vni: 100 };
  const r = await lab.exec(node, 'podlegs', { command: 'ADD', pod, ifname: 'net1', conf: nad,
    env: { PODLEGS_NODE_CONFIG: nodeFile, NODE_OPTIONS: `--require ${REPORT_HOOK}`, PODLEGS_LOAD_REPORT: path.join(lab.dir, 'delegate-load.json') } });
  ok(r);
  expect(servedByAgent({ loaded: JSON.parse(fs.readFileSync(path.join(lab.dir, 'delegate-load.json'), 'utf8')) })).toBe(true);
  expect((await podLinks(pod)).map((l) => l.ifname)).toContain('net1');
  expect(Object.keys((await nodeState(node)).state)).toEqual([`${pod.containerId}_net1.json`]);
  ok(await lab.exec(node, 'podlegs', { command: 'DEL', pod, ifname: 'net1', conf: nad, env: { PODLEGS_NODE_CONFIG: nodeFile } }));
  expect({ ...(await nodeState(node)), links: [] }).toEqual({ links: [], state: {}, registry: {} });
  await agentRemovesSegments(node);
  await lab.removePod(pod);
});

test('a second agent on a live socket is refused', async () => {
  // Another netns (its own single-instance lock), the same socket path.
  fs.writeFileSync(agentFile(other), JSON.stringify({ ...nodeConf(other), log: { level: 'info' }, agent: { socket: node.agentSocket, metricsAddress: '127.0.0.1:9750' } }));
  const second = lab.spawn(other.netns, [lab.podlegsBin, 'agent', '--config', agentFile(other)], { env: { NODE_NAME: other.name } });
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([second.exited, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 30_000); })]);
  clearTimeout(timer);
  if (!exit) await second.kill();
  expect(exit?.code).toBe(1);
  expect(second.stderr()).toContain(`another podlegs agent serves ${node.agentSocket}`);
  expect(fs.statSync(node.agentSocket).isSocket()).toBe(true); // the first one's, untouched
});

test('an agent-served DEL leaves emptied segments to the agent: gone once its grace period has passed; a mismatched VXLAN device never', async () => {
  const pod = await lab.addPod(node, 'grace');
  const add = ok(await call('ADD', pod, entry(node, node.agentSocket, LEGS)));
  expect(servedByAgent(add)).toBe(true);
  // plvx100 replaced by a stale device: podlegs' name, kind and VNI, another local address, a port of plbr100.
  await lab.sh('ip link del plvx100 && ip link add plvx100 type vxlan id 100 local 192.0.2.99 dstport 4789 nolearning && ip link set plvx100 master plbr100', { netns: node.nsName });
  const servedBefore = agentLines(agent!, 'CNI call served').length;
  const REMOVED = 'segment removed: no local leg for the grace period';
  const removedBefore = agentLines(agent!, REMOVED).length;
  const del = ok(await call('DEL', pod, entry(node, node.agentSocket, LEGS, add.json)));
  expect(servedByAgent(del)).toBe(true);
  const after = await nodeState(node);
  expect(after.links).toEqual(['plbr100 bridge ', 'plbr200 bridge ', 'plvx100 vxlan plbr100', 'plvx200 vxlan plbr200']); // legs gone, segments stay
  expect({ state: after.state, registry: after.registry }).toEqual({ state: {}, registry: {} });
  // The agent says so on its stderr (read through a pipe: the line may trail the kernel change).
  const removed = await waitUntil('the agent removes segment 200', () => agentLines(agent!, REMOVED).slice(removedBefore).find((j) => j.vni === 200), GRACE_S * 1000 + 60_000, 100);
  // Not before the grace period: the agent's own clock, DEL served → segment removed.
  const served = agentLines(agent!, 'CNI call served').slice(servedBefore).find((j) => j.command === 'DEL')!;
  expect(Date.parse(removed!.timestamp) - Date.parse(served.timestamp)).toBeGreaterThanOrEqual(GRACE_S * 1000 - 250);
  // Segment 100 is not this node's (another local address): untouched, after the agent's run that removed 200.
  expect((await nodeState(node)).links).toEqual(['plbr100 bridge ', 'plvx100 vxlan plbr100']);
  expect((await lab.sh('ip -d -o link show plvx100', { netns: node.nsName })).stdout).toContain('local 192.0.2.99');
  await lab.sh('ip link del plvx100 && ip link del plbr100', { netns: node.nsName });
  await lab.removePod(pod);
});

test('an in-process DEL removes the segments it empties at once, and leaves a foreign device (right name, another VNI) and its bridge alone', async () => {
  const pod = await lab.addPod(node, 'foreign');
  const add = ok(await call('ADD', pod, entry(node, noAgent(node), LEGS)));
  expect(servedByAgent(add)).toBe(false);
  await lab.sh('ip link del plvx100 && ip link add plvx100 type vxlan id 999 dstport 4789 nolearning && ip link set plvx100 master plbr100', { netns: node.nsName });
  ok(await call('DEL', pod, entry(node, noAgent(node), LEGS, add.json)));
  const after = await nodeState(node);
  expect(after).toEqual({ links: ['plbr100 bridge ', 'plvx100 vxlan plbr100'], state: {}, registry: {} }); // segment 200 gone at once
  expect((await lab.sh('ip -d -o link show plvx100', { netns: node.nsName })).stdout).toContain('id 999');
  await lab.sh('ip link del plvx100 && ip link del plbr100', { netns: node.nsName });
  await lab.removePod(pod);
});

describe('agent down, killed, hung', () => {
  let pod: LabPod;
  let prev: Json;
  beforeAll(async () => {
    pod = await lab.addPod(node, 'crash');
    prev = ok(await lab.chain(pod, 'ADD', { cniVersion: '1.0.0', name: 'lab', plugins: [lab.ptpPlugin(node)] })).json as Json;
  });
  afterAll(async () => {
    await lab.chain(pod, 'DEL', { cniVersion: '1.0.0', name: 'lab', plugins: [lab.ptpPlugin(node)] });
    await lab.removePod(pod);
  });
  const conf = (legs: Json[] = LEGS, p: unknown = prev): Json => entry(node, node.agentSocket, legs, p);

  test('agent stopped (no socket) or SIGKILLed (stale socket): the call runs in-process', async () => {
    await agent!.kill(); // SIGTERM: the agent removes its socket
    agent = undefined;
    expect(fs.existsSync(node.agentSocket)).toBe(false);
    const add = ok(await call('ADD', pod, conf()));
    expect(servedByAgent(add)).toBe(false);
    expect((await podLinks(pod)).map((l) => l.ifname)).toEqual(expect.arrayContaining(['net1', 'net2']));
    ok(await call('DEL', pod, conf(LEGS, add.json)));

    agent = await startAgent(node);
    process.kill(agent.pid, 'SIGKILL');
    await agent.exited;
    agent = undefined;
    expect(fs.statSync(node.agentSocket).isSocket()).toBe(true); // left behind: connection refused
    const again = ok(await call('ADD', pod, conf()));
    expect(servedByAgent(again)).toBe(false);
    ok(await call('DEL', pod, conf(LEGS, again.json)));
    expect((await nodeState(node)).links).toEqual([]);
  });

  /** Starts an ADD whose IPAM child hangs; resolves once the agent is inside it (the child wrote its PID). */
  const slowIpamAdd = async (legs: Json[]): Promise<{ pending: ReturnType<typeof call>; ipamPid: number }> => {
    fs.writeFileSync(path.join(slowDir, 'slow'), '');
    const pending = call('ADD', pod, conf(legs));
    let ipamPid = 0;
    for (let i = 0; i < 600 && !ipamPid; i++) {
      await sleep(50);
      ipamPid = Number(fs.readFileSync(path.join(slowDir, 'slow'), 'utf8').trim() || 0);
    }
    expect(ipamPid).toBeGreaterThan(0);
    return { pending, ipamPid };
  };

  test('SIGKILL of the agent while it serves an ADD: code 11 at once, DEL cleans up, the next ADD works', async () => {
    agent = await startAgent(node); // replaces the stale socket
    const legs = [...LEGS, { network: 's', interface: 'net3' }];
    const { pending, ipamPid } = await slowIpamAdd(legs);
    const t0 = Date.now();
    process.kill(agent.pid, 'SIGKILL');
    await agent.exited;
    agent = undefined;
    const r = await pending;
    const took = Date.now() - t0;
    try { process.kill(ipamPid, 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(path.join(slowDir, 'slow'));
    expect(r.code).toBe(1);
    expect((r.json as Json).code).toBe(11);
    expect((r.json as Json).msg).toMatch(/closed the connection before answering/);
    console.log(`client answered code 11 ${took} ms after the agent was killed`);
    // Half an ADD is on the node (net1, net2 and their segments); the runtime's DEL removes it.
    expect((await nodeState(node)).links.length).toBeGreaterThan(0);
    ok(await call('DEL', pod, conf(legs)));
    expect(await nodeState(node)).toEqual({ links: [], state: {}, registry: {} });
    expect((await podLinks(pod)).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);

    agent = await startAgent(node);
    const add = ok(await call('ADD', pod, conf(legs)));
    expect(servedByAgent(add)).toBe(true);
    expect((await podLinks(pod)).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo', 'net1', 'net2', 'net3']);
    ok(await call('DEL', pod, conf(legs, add.json)));
    await agentRemovesSegments(node);
  });

  test('an ADD whose IPAM plugin hangs does not stall the agent: meanwhile it follows a member joining on another node', async () => {
    const legs = [...LEGS, { network: 's', interface: 'net3' }];
    const { pending, ipamPid } = await slowIpamAdd(legs);
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const remote = await lab.addPod(other, 'remote');
    const remoteConf = entry(other, noAgent(other), [{ network: 'a', interface: 'net1', ips: ['10.100.0.7/24'] }]);
    let sawWhileHung = false;
    try {
      // segment 100 exists (net1 came before the hanging leg); a member of VNI 100 joins on the
      // other node: the agent, still inside the ADD, writes the flood entry for it.
      ok(await lab.exec(other, 'podlegs', { command: 'ADD', pod: remote, conf: remoteConf }));
      await waitUntil('the other node in the flood list of VNI 100', async () => (await floodDsts(lab, node, 100))?.includes(other.vtep), CONVERGE_MS, 50);
      sawWhileHung = alive(ipamPid); // with a blocking IPAM exec, the flood entry only came once the IPAM was killed at 30 s
    } finally {
      try { process.kill(ipamPid, 'SIGKILL'); } catch { /* gone */ }
      fs.rmSync(path.join(slowDir, 'slow'));
      await pending;
      ok(await lab.exec(other, 'podlegs', { command: 'DEL', pod: remote, conf: remoteConf }));
      await lab.removePod(remote);
    }
    expect(sawWhileHung).toBe(true);
    const r = await pending; // the IPAM died: the ADD failed and rolled back
    expect(r.code).toBe(1);
    expect((r.json as Json).msg).toMatch(/IPAM plugin slow-ipam ADD failed/);
    await waitUntil('nothing left on the node', async () => JSON.stringify(await nodeState(node)) === JSON.stringify({ links: [], state: {}, registry: {} }), CONVERGE_MS, 200);
  });

  test('a hung agent (SIGSTOP): code 11 after the client deadline, and the abandoned call never runs', async () => {
    const a = agent!;
    process.kill(a.pid, 'SIGSTOP');
    let r: CniOutcome;
    try {
      r = await call('ADD', pod, conf(), { PODLEGS_AGENT_TIMEOUT_MS: '2000' });
    } finally {
      process.kill(a.pid, 'SIGCONT');
    }
    expect(r.code).toBe(1);
    expect((r.json as Json).code).toBe(11);
    expect((r.json as Json).msg).toMatch(/did not answer within 2 s/);
    // Awake again, the agent reads the request of a client that has left, and drops it.
    await a.waitFor('its client left before it was read', 30_000);
    expect(await nodeState(node)).toEqual({ links: [], state: {}, registry: {} });
    const add = ok(await call('ADD', pod, conf()));
    expect(servedByAgent(add)).toBe(true);
    ok(await call('DEL', pod, conf(LEGS, add.json)));
  });
});

