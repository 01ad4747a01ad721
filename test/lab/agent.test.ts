/**
 * The node agent in a 4-node lab (every node a netns, pods chained [ptp, podlegs] in static mode):
 * join/leave updating flood lists and remote-MAC entries on exactly the right nodes, drift repair
 * by the periodic resync, SIGKILL + restart under a 10 ms ping with 0 packets lost (also while pods
 * join and leave, with no flood entry of a live member ever missing), the
 * single-instance lock, /metrics and /healthz on the node's loopback, `podlegs status`, bad
 * registry entries skipped and logged, and removal of a segment left without legs after its grace
 * period, never before (objects podlegs did not create untouched). Every wait is bounded generously
 * (test/support/wait.ts); how fast the agents converge is measured by scripts/bench-agent.mjs.
 * Run as root after `npm run build`:
 *   npx jest --selectProjects lab --runInBand test/lab/agent.test.ts
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Lab, LabNode, LabProcess, leakCheck } from './lab';
import {
  addNfPod, CONVERGE_MS, delNfPod, floodDsts, macOf, NfPod, nodeConfig, nodeLeftovers, rootSnapshot, SEEN_MS, sleep, waitUntil,
} from './nf';

jest.setTimeout(600_000);

const RESYNC_S = 3;
const GRACE_S = 2;
const ZERO = '00:00:00:00:00:00';

interface FdbJson { mac: string; dst?: string; ifname?: string; flags?: string[] }

describe('podlegs agent in a 4-node lab', () => {
  let lab: Lab | undefined;
  const agents = new Map<number, LabProcess>();
  const pods: Record<string, NfPod> = {};
  let root: string[] = [];
  const get = (): Lab => { if (!lab) throw new Error('no lab'); return lab; };
  const node = (i: number): LabNode => get().nodes[i - 1];
  const vtep = (i: number): string => node(i).vtep;
  const agentFile = (n: LabNode): string => path.join(n.dir, 'agent.json');

  const startAgent = async (i: number): Promise<LabProcess> => {
    const n = node(i);
    const a = get().spawn(n.netns, [get().podlegsBin, 'agent', '--config', agentFile(n)], { env: { NODE_NAME: n.name } });
    await a.waitFor('agent started', SEEN_MS);
    agents.set(i, a);
    return a;
  };
  /** JSON log lines of an agent (its log goes to stderr: no log file configured). */
  const logLines = (a: LabProcess): Record<string, unknown>[] => a.stderr().split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const warnings = (a: LabProcess): string[] => logLines(a).filter((l) => l.level !== 'info' && l.level !== 'debug').map((l) => JSON.stringify(l));
  const sh = (i: number, cmd: string, allowFail = false): Promise<{ code: number; stdout: string; stderr: string }> =>
    get().sh(cmd, { netns: node(i).nsName, allowFail });
  const curl = async (i: number, url: string): Promise<{ code: string; body: string }> => {
    const r = await sh(i, `curl -s -m 30 -w '\\n%{http_code}' ${url}`, true);
    const lines = r.stdout.split('\n');
    return { code: lines.pop() ?? '', body: lines.join('\n') };
  };
  /** node → "vni" → sorted remote VTEPs (absent: no segment). */
  const floodMap = async (vnis = [100, 200]): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const n of get().nodes) {
      for (const vni of vnis) {
        const d = await floodDsts(get(), n, vni);
        if (d) out[`${n.name}/${vni}`] = d;
      }
    }
    return out;
  };
  const expectFlood = async (want: Record<string, number[]>, timeoutMs = CONVERGE_MS): Promise<void> => {
    const expected = Object.fromEntries(Object.entries(want).map(([k, v]) => [k, v.map(vtep).sort()]));
    let last: Record<string, string[]> = {};
    await waitUntil('flood lists', async () => JSON.stringify(last = await floodMap()) === JSON.stringify(expected), timeoutMs, 50)
      .catch(() => expect(last).toEqual(expected));
  };
  /** Unicast entries (mac → dst) of plvx<vni> on node i. */
  const macEntries = async (i: number, vni: number): Promise<Record<string, string>> => {
    const r = await sh(i, `bridge -j fdb show dev plvx${vni}`);
    const e = JSON.parse(r.stdout || '[]') as FdbJson[];
    // Sorted by MAC: the kernel's order is not the order of addition.
    return Object.fromEntries(e.filter((x) => x.mac !== ZERO && x.dst).map((x) => [x.mac, x.dst as string]).sort());
  };

  beforeAll(async () => {
    root = rootSnapshot();
    lab = await Lab.create({ nodes: 4 });
    for (const n of lab.nodes) {
      writeFileSync(agentFile(n), JSON.stringify({
        ...nodeConfig(lab, n, undefined, 'info'),
        agent: { socket: n.agentSocket, metricsAddress: '127.0.0.1:9750', resyncSeconds: RESYNC_S, gracePeriodSeconds: GRACE_S },
      }));
    }
    for (let i = 1; i <= 4; i++) await startAgent(i);
  });

  afterAll(async () => {
    const l = lab;
    if (!l) return;
    try {
      for (const a of agents.values()) await a.kill();
      for (const p of Object.values(pods)) await delNfPod(l, p).catch(() => undefined);
      expect(await nodeLeftovers(l)).toEqual([]);
    } finally {
      await l.destroy();
    }
    expect(await leakCheck(l.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(root);
  });

  test('join and leave update flood lists and MAC entries on exactly the nodes with members', async () => {
    const l = get();
    pods.x1 = await addNfPod(l, node(1), 'x1', [{ network: 'a', interface: 'net1', ips: ['10.100.0.1/24'] }]);
    await expectFlood({ 'n1/100': [] });
    pods.x2 = await addNfPod(l, node(2), 'x2', [{ network: 'a', interface: 'net1', ips: ['10.100.0.2/24'] }]);
    await expectFlood({ 'n1/100': [2], 'n2/100': [1] });
    pods.x3 = await addNfPod(l, node(3), 'x3', [{ network: 'b', interface: 'net1', ips: ['10.200.0.3/24'] }]);
    await expectFlood({ 'n1/100': [2], 'n2/100': [1], 'n3/200': [] });
    pods.x4 = await addNfPod(l, node(4), 'x4', [
      { network: 'a', interface: 'net1', ips: ['10.100.0.4/24'] }, { network: 'b', interface: 'net2', ips: ['10.200.0.4/24'] }]);
    await expectFlood({ 'n1/100': [2, 4], 'n2/100': [1, 4], 'n3/200': [4], 'n4/100': [1, 2], 'n4/200': [3] });

    // Static entries for the remote members' MACs, on member nodes only.
    const mac = async (p: string, ifname = 'net1'): Promise<string> => macOf(l, pods[p].pod.nsName, ifname);
    await waitUntil('MAC entries on n1', async () => JSON.stringify(await macEntries(1, 100)) ===
      JSON.stringify(Object.fromEntries([[await mac('x2'), vtep(2)], [await mac('x4'), vtep(4)]].sort())), CONVERGE_MS, 50);
    expect(await macEntries(3, 200)).toEqual({ [await mac('x4', 'net2')]: vtep(4) });

    await delNfPod(l, pods.x2);
    delete pods.x2;
    await expectFlood({ 'n1/100': [4], 'n3/200': [4], 'n4/100': [1], 'n4/200': [3] });
    const x4 = await mac('x4');
    await waitUntil('MAC entries on n1 = [x4]', async () => JSON.stringify(Object.keys(await macEntries(1, 100))) === JSON.stringify([x4]), CONVERGE_MS, 50);
    for (const a of agents.values()) expect(warnings(a)).toEqual([]);
  });

  test(`drift is repaired by the periodic resync (every ${RESYNC_S} s), with no registry event`, async () => {
    const l = get();
    const x4mac = await macOf(l, pods.x4.pod.nsName, 'net1');
    const repairs = (): number => logLines(agents.get(1)!).filter((x) => x.message === 'fdb drift repaired').length;
    const before = repairs();
    await sh(1, `bridge fdb del ${ZERO} dev plvx100 dst ${vtep(4)} && bridge fdb del ${x4mac} dev plvx100 dst ${vtep(4)}` +
      ` && bridge fdb append ${ZERO} dev plvx100 dst 192.0.2.99 && bridge fdb add 02:00:00:00:00:99 dev plvx100 dst 192.0.2.99`);
    await waitUntil('n1 repaired', async () => JSON.stringify((await floodMap())['n1/100']) === JSON.stringify([vtep(4)]) &&
      JSON.stringify(await macEntries(1, 100)) === JSON.stringify({ [x4mac]: vtep(4) }), CONVERGE_MS, 50);
    // Logged only by a run the periodic resync triggered, with changes: nothing changed in the registry.
    expect(repairs()).toBeGreaterThan(before);
  });

  test('SIGKILL and restart of the agents under a 10 ms ping: 0 packets lost, then converged', async () => {
    const l = get();
    const ping = l.spawn(pods.x1.pod.netns, ['ping', '-n', '-i', '0.01', '-c', '600', '-W', '1', '10.100.0.4']);
    await ping.waitFor(/bytes from/, SEEN_MS);
    for (const i of [1, 4]) {
      const a = agents.get(i)!;
      process.kill(a.pid, 'SIGKILL');
      await a.exited;
    }
    // Membership changes while both agents are down: the restarted agents must catch up.
    pods.x5 = await addNfPod(l, node(2), 'x5', [{ network: 'a', interface: 'net1', ips: ['10.100.0.5/24'] }]);
    await sleep(300);
    for (const i of [1, 4]) await startAgent(i);
    await expectFlood({ 'n1/100': [2, 4], 'n2/100': [1, 4], 'n3/200': [4], 'n4/100': [1, 2], 'n4/200': [3] });
    const exit = await ping.exited;
    const out = ping.stdout();
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    expect(m).not.toBeNull();
    const [sent, received] = [Number(m![1]), Number(m![2])];
    process.stdout.write(`agent restart under ping -i 0.01: ${sent} sent, ${received} received, ${sent - received} lost\n`);
    expect(exit.code).toBe(0);
    expect(sent).toBe(600);
    expect(received).toBe(sent);
    // The restarted agents started from the kernel as it was: nothing of x1<->x4 was re-added.
    const restarted = logLines(agents.get(1)!).filter((x) => x.message === 'fdb updated').flatMap((x) => x.changes as string[]);
    expect(restarted.every((c) => c.includes(vtep(2)))).toBe(true);
  });

  test('SIGKILL and restart of an agent while pods join and leave, under a 10 ms ping: 0 lost, no flood entry of a live member ever gone', async () => {
    const l = get();
    // Live members of VNI 100: x1 (n1), x5 (n2), x4 (n4). x1 pings x4 every 10 ms; on n1 and n4
    // a sampler dumps plvx100's FDB over and over: every dump must hold the flood entries of the
    // other live members' nodes, also while an agent is down, restarting or catching up.
    const live: Record<number, number[]> = { 1: [2, 4], 4: [1, 2] };
    const samplers = Object.keys(live).map(Number).map((i) => ({ i, proc: l.spawn(node(i).netns, ['sh', '-c',
      'while :; do echo "--- $(date +%s%3N)"; bridge fdb show dev plvx100 2>&1; sleep 0.01; done'], { maxOutput: 64 << 20 }) }));
    const ping = l.spawn(pods.x1.pod.netns, ['ping', '-n', '-i', '0.01', '-W', '1', '10.100.0.4']);
    await ping.waitFor(/bytes from/, SEEN_MS);
    const joined: NfPod[] = [];
    let restarts = 0;
    try {
      // Three rounds: the agent of n1 (the pinger's node), of n4 (the target's), then both. While
      // an agent is down a pod joins on its node (the plugin runs in-process) and on n3 (a new
      // member node for everyone), then the agent starts again and the joiners leave through it.
      for (const [round, down] of [[1], [4], [1, 4]].entries()) {
        for (const i of down) {
          const a = agents.get(i)!;
          process.kill(a.pid, 'SIGKILL');
          await a.exited;
        }
        for (const [k, i] of [...down, 3].entries()) {
          joined.push(await addNfPod(l, node(i), `j${round}${k}`, [{ network: 'a', interface: 'net1', ips: [`10.100.0.${20 + 10 * round + k}/24`] }]));
        }
        await sleep(300);
        for (const i of down) { await startAgent(i); restarts++; }
        while (joined.length) await delNfPod(l, joined.pop()!);
      }
      await expectFlood({ 'n1/100': [2, 4], 'n2/100': [1, 4], 'n3/200': [4], 'n4/100': [1, 2], 'n4/200': [3] });
      // The restarted agent of n1 has caught up with the joiners' leaving (its gauges follow its next run).
      await waitUntil('n1 agent counts 1 segment, 1 leg', async () => /^podlegs_legs 1$/m.test((await curl(1, 'http://127.0.0.1:9750/metrics')).body) &&
        /^podlegs_segments 1$/m.test((await curl(1, 'http://127.0.0.1:9750/metrics')).body), CONVERGE_MS, 200);
    } finally {
      for (const p of joined) await delNfPod(l, p).catch(() => undefined);
      process.kill(ping.pid, 'SIGINT'); // ping prints its statistics and exits
      await ping.exited;
      for (const s of samplers) await s.proc.kill();
    }
    // Every sequence number up to the last answered one was answered (the one in flight at SIGINT aside).
    const seqs = new Set([...ping.stdout().matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])));
    const last = Math.max(...seqs);
    const lost = Array.from({ length: last }, (_, k) => k + 1).filter((q) => !seqs.has(q));
    const missing: string[] = [];
    let samples = 0;
    for (const { i, proc } of samplers) {
      for (const dump of proc.stdout().split('--- ').slice(1)) {
        const [at, ...lines] = dump.split('\n');
        if (!lines.join('\n').trim()) continue; // cut off by the kill
        samples++;
        for (const j of live[i]) {
          if (!lines.some((x) => x.startsWith(`${ZERO} dst ${vtep(j)} `))) missing.push(`n${i} at ${at}: no flood entry for n${j}: ${lines.join(' | ').slice(0, 200)}`);
        }
      }
    }
    process.stdout.write(`agent restarts under pod churn and ping -i 0.01: ${restarts} restarts, ${last} pings answered in order, ${lost.length} lost; ` +
      `${samples} FDB samples on n1 and n4, ${missing.length} without a live member's flood entry\n`);
    expect(lost).toEqual([]);
    expect(last).toBeGreaterThan(100);
    expect(missing.slice(0, 5)).toEqual([]);
    expect(samples).toBeGreaterThan(20);
  });

  test('a second agent in the same node refuses to run', async () => {
    const l = get();
    const n = node(1);
    const r = await l.sh(`${l.podlegsBin} agent --config ${agentFile(n)}`, { netns: n.nsName, allowFail: true, timeoutMs: SEEN_MS });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`another podlegs agent already runs in this network namespace (pid ${agents.get(1)!.pid})`);
    expect(agents.get(1)!.running()).toBe(true);
  });

  test('/metrics and /healthz on the node netns loopback only', async () => {
    const m = await curl(1, 'http://127.0.0.1:9750/metrics');
    expect(m.code).toBe('200');
    for (const re of [/^podlegs_segments 1$/m, /^podlegs_legs 1$/m, /^podlegs_members \d+$/m, /^podlegs_fdb_entries\{type="flood"\} 2$/m,
      /^podlegs_fdb_entries\{type="mac"\} 2$/m, /^podlegs_reconcile_runs_total \d+$/m, /^podlegs_reconcile_errors_total 0$/m,
      /^podlegs_reconcile_duration_seconds_bucket/m, /^podlegs_registry_errors_total 0$/m, /^process_resident_memory_bytes \d+/m]) {
      expect(m.body).toMatch(re);
    }
    const h = await curl(1, 'http://127.0.0.1:9750/healthz');
    expect(h.code).toBe('200');
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok', vtep: vtep(1) });
    // Not reachable from another node over the underlay: bound to loopback.
    expect((await curl(2, `http://${vtep(1)}:9750/metrics`)).code).toBe('000');
  });

  test('podlegs status shows segments, legs, remote VTEPs and FDB entries (table and --json)', async () => {
    const l = get();
    const json = JSON.parse((await sh(1, `${l.podlegsBin} status --json --config ${agentFile(node(1))}`)).stdout) as {
      vtep: string; agent: { pid: number }; segments: { vni: number; legs: string[]; flood: string[]; macs: unknown[]; members: number; drift: string[] }[];
      fdb: { vni: number; mac: string; dst: string; type: string }[]; attachments: { legs: { ifname: string; vni: number }[] }[];
    };
    expect(json.vtep).toBe(vtep(1));
    expect(json.agent.pid).toBe(agents.get(1)!.pid);
    expect(json.segments).toEqual([expect.objectContaining({ vni: 100, legs: [expect.stringMatching(/^pl[0-9a-f]{12}$/)], flood: [vtep(2), vtep(4)].sort(), members: 3, drift: [] })]);
    expect(json.fdb.filter((e) => e.type === 'flood').map((e) => e.dst).sort()).toEqual([vtep(2), vtep(4)].sort());
    expect(json.fdb.filter((e) => e.type === 'mac')).toHaveLength(2);
    expect(json.attachments.flatMap((a) => a.legs)).toEqual([expect.objectContaining({ ifname: 'net1', vni: 100 })]);
    const table = (await sh(1, `${l.podlegsBin} status --config ${agentFile(node(1))}`)).stdout;
    expect(table).toMatch(new RegExp(`^100\\s+plbr100\\s+plvx100\\s+1\\s+2\\s+3\\s+yes\\s+${[vtep(2), vtep(4)].sort().join(', ')}$`, 'm'));
    expect(table).toMatch(new RegExp(`^100\\s+00:00:00:00:00:00\\s+${vtep(2)}\\s+flood$`, 'm'));
    expect(table).toContain(`agent: running, pid ${agents.get(1)!.pid}`);
  });

  test('bad registry entries are skipped and logged once, never applied, never fatal', async () => {
    const l = get();
    const dir = path.join(l.registryDir, 'vni-100');
    const good = { vni: 100, vtep: vtep(3), mac: '02:00:00:00:33:33', owner: 'c/x/net1' };
    const bad: Record<string, string> = {
      'garbage.json': '{"vni": 100, "vtep": ',
      'foreign.json': JSON.stringify({ kind: 'something-else', spec: {} }),
      'mcast-vtep.json': JSON.stringify({ ...good, vtep: '239.1.1.1' }),
      'classe-vtep.json': JSON.stringify({ ...good, vtep: '240.0.0.9' }),
      'zero-vtep.json': JSON.stringify({ ...good, vtep: '0.0.0.0' }),
      'group-mac.json': JSON.stringify({ ...good, mac: '01:00:5e:00:00:01' }),
      'wrong-dir.json': JSON.stringify({ ...good, vni: 200 }),
      'huge.json': JSON.stringify({ ...good, pad: 'x'.repeat(10_000) }),
    };
    for (const [f, text] of Object.entries(bad)) writeFileSync(path.join(dir, f), text);
    symlinkSync('/dev/zero', path.join(dir, 'link.json'));
    writeFileSync(path.join(dir, 'README.txt'), 'not an entry: ignored');
    const nBad = Object.keys(bad).length + 1;
    const before = await floodMap();
    const skippedBy = (i: number): Record<string, unknown>[] => logLines(agents.get(i)!).filter((x) => x.message === 'skipping bad registry entry');
    try {
      for (const i of [1, 2, 3, 4]) await waitUntil(`bad entries logged by the agent on n${i}`, async () => skippedBy(i).length >= nBad, CONVERGE_MS, 50);
      // Over a window of more than one resync period: not logged again (a stall makes the window hold fewer resyncs, never a false failure).
      await sleep(RESYNC_S * 1000 + 500);
      for (const i of [1, 2, 3, 4]) {
        const skipped = skippedBy(i);
        expect(skipped.map((x) => path.basename(String(x.entry))).sort()).toEqual([...Object.keys(bad), 'link.json'].sort());
        expect(agents.get(i)!.running()).toBe(true);
      }
      expect(await floodMap()).toEqual(before);
      expect(Object.values(await macEntries(1, 100))).not.toContain('239.1.1.1');
      const m = await curl(1, 'http://127.0.0.1:9750/metrics');
      expect(m.body).toMatch(new RegExp(`^podlegs_registry_bad_entries ${nBad}$`, 'm'));
      expect((await curl(1, 'http://127.0.0.1:9750/healthz')).code).toBe('200');
    } finally {
      for (const f of [...Object.keys(bad), 'link.json', 'README.txt']) rmSync(path.join(dir, f), { force: true });
    }
  });

  test(`a segment left without legs is removed after the grace period (${GRACE_S} s); foreign objects untouched`, async () => {
    const l = get();
    // Objects podlegs did not create, on node 3: a bridge + VXLAN of another owner (same VNI, with a
    // flood entry), and a link with a podlegs-like name but the wrong kind.
    await sh(3, 'ip link add br-foreign type bridge && ip link add vx-foreign type vxlan id 100 dstport 4790 nolearning' +
      ` local ${vtep(3)} && ip link set vx-foreign master br-foreign && ip link add plvx300 type bridge` +
      ` && bridge fdb append ${ZERO} dev vx-foreign dst 192.0.2.99`);
    pods.x6 = await addNfPod(l, node(3), 'x6', [{ network: 'a', interface: 'net1', ips: ['10.100.0.6/24'] }]);
    await expectFlood({ 'n1/100': [2, 3, 4], 'n2/100': [1, 3, 4], 'n3/100': [1, 2, 4], 'n3/200': [4], 'n4/100': [1, 2, 3], 'n4/200': [3] });
    // The pod's netns goes away without a CNI DEL: its veth vanishes, the segment is left empty.
    // The leg cannot vanish before `gone`, so the agent may remove the segment at gone + grace at
    // the earliest: an observation of "removed" that ended before that is a removal inside the
    // grace period. (A stall can only delay the observations, never make them early.)
    const gone = Date.now();
    await l.removePod(pods.x6.pod);
    let removedSeenAt = 0;
    await waitUntil('segment 100 removed on n3', async () => {
      const present = (await floodDsts(l, node(3), 100)) !== undefined;
      if (!present) removedSeenAt = Date.now();
      return !present;
    }, CONVERGE_MS, 50);
    expect(removedSeenAt - gone).toBeGreaterThanOrEqual(GRACE_S * 1000); // not before the grace period ended
    const links = (await sh(3, 'ip -br link')).stdout;
    expect(links).not.toMatch(/^plbr100\b/m);
    expect(links).toMatch(/^br-foreign\b/m);
    expect(links).toMatch(/^vx-foreign\b/m);
    expect(links).toMatch(/^plvx300\b/m);
    expect((await sh(3, 'bridge fdb show dev vx-foreign')).stdout).toContain('dst 192.0.2.99');
    expect((await floodMap())['n3/200']).toEqual([vtep(4)]); // the segment with a leg stays
    expect(logLines(agents.get(3)!).some((x) => x.message === 'segment removed: no local leg for the grace period' && x.vni === 100)).toBe(true);
    // The runtime's DEL comes later and cleans up the registry entry and the state.
    await delNfPod(l, pods.x6);
    delete pods.x6;
    await sh(3, 'ip link del vx-foreign && ip link del br-foreign && ip link del plvx300');
    await expectFlood({ 'n1/100': [2, 4], 'n2/100': [1, 4], 'n3/200': [4], 'n4/100': [1, 2], 'n4/200': [3] });
    for (const a of agents.values()) expect(warnings(a).filter((w) => !w.includes('skipping bad registry entry'))).toEqual([]);
  });

  test('an agent whose VTEP is not unicast refuses to start', async () => {
    const l = get();
    const n = node(4);
    const file = path.join(n.dir, 'bad-agent.json');
    mkdirSync(n.dir, { recursive: true });
    writeFileSync(file, JSON.stringify({ ...nodeConfig(l, n), underlay: { interface: 'ul0', vtep: '224.0.0.1' } }));
    const r = await l.sh(`${l.podlegsBin} agent --config ${file}`, { netns: n.nsName, allowFail: true, timeoutMs: SEEN_MS });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/224\.0\.0\.1.*not a unicast address/);
  });
});
