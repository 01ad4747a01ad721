// Leg guard benchmark (prints figures, asserts nothing): iperf3 TCP throughput over a guarded
// leg (security "enforce") and an unguarded one (network without security), measured side by
// side in one run, rounds interleaved so both see the same machine load; same node (bridge
// only: the guard's cost is most visible) and across nodes (VXLAN). Then ADD latency of a pod
// with a guarded leg vs an unguarded one, also interleaved. Bundled and run by
// scripts/bench-guard.mjs, as root.
import { Lab, leakCheck } from '../../test/lab/lab';
import { addNfPod, pingOnce, startAgent, waitUntil, CONVERGE_MS, SEEN_MS } from '../../test/lab/nf';
import { fmt, median, table } from './stats.mjs';

const NETWORKS = { g: { vni: 300, security: { mode: 'enforce', vrrp: [{ vrid: 51, vips: ['10.30.0.100'] }] } }, o: { vni: 400 } };
const legs = (n: number) => [
  { network: 'g', interface: 'net1', ips: [`10.30.0.${n}/24`] },
  { network: 'o', interface: 'net2', ips: [`10.40.0.${n}/24`] },
];

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`usage: bench-guard [--rounds N] [--seconds S] [--adds N]`);
  return v;
}

async function main(): Promise<void> {
  const rounds = arg('--rounds', 10);
  const seconds = arg('--seconds', 2);
  const adds = arg('--adds', 15);
  const lab = await Lab.create({ nodes: 2, podlegsBin: process.env.PODLEGS_BIN });
  const stop = (): void => { void lab.destroy().finally(() => process.exit(130)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const n of lab.nodes) await startAgent(lab, n);
    const a = await addNfPod(lab, lab.nodes[0], 'a', legs(1), { networks: NETWORKS as never });
    const b = await addNfPod(lab, lab.nodes[0], 'b', legs(2), { networks: NETWORKS as never });
    const c = await addNfPod(lab, lab.nodes[1], 'c', legs(3), { networks: NETWORKS as never });
    for (const p of [b, c]) {
      const s = lab.spawn(p.pod.netns, ['iperf3', '-s', '--forceflush']);
      await s.waitFor(/Server listening/, SEEN_MS);
    }
    for (const ip of ['10.30.0.2', '10.40.0.2', '10.30.0.3', '10.40.0.3']) await waitUntil(`ping ${ip}`, () => pingOnce(lab, a.pod, ip, 1), CONVERGE_MS);
    const gbps = async (ip: string): Promise<number> => {
      const r = await lab.sh(`iperf3 -c ${ip} -t ${seconds} -J`, { netns: a.pod.nsName, timeoutMs: (seconds + 30) * 1000 });
      return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
    };
    const paths = [{ name: 'same node (bridge)', guarded: '10.30.0.2', plain: '10.40.0.2' }, { name: 'across nodes (VXLAN)', guarded: '10.30.0.3', plain: '10.40.0.3' }];
    const rows: (string | number)[][] = [];
    for (const p of paths) {
      const g: number[] = [];
      const o: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // alternate which goes first, so a drifting load does not favour one
        if (r % 2 === 0) { g.push(await gbps(p.guarded)); o.push(await gbps(p.plain)); } else { o.push(await gbps(p.plain)); g.push(await gbps(p.guarded)); }
      }
      // each round's two runs are back to back: their ratio is the least disturbed by other load
      const paired = g.map((x, i) => x / o[i]);
      rows.push([p.name, rounds, fmt(median(o), 2), fmt(median(g), 2), fmt(median(g) / median(o), 3), fmt(median(paired), 3)]);
    }
    console.log(`\niperf3 TCP from pod a, ${rounds} rounds × ${seconds} s each, interleaved; target guarded/unguarded >= 0.95`);
    console.log(table(['path', 'rounds', 'unguarded Gbit/s', 'guarded Gbit/s', 'ratio of medians', 'median paired ratio'], rows));

    // ADD latency: the plugin alone (no ptp), served by the node's agent, a fresh pod netns per ADD, DEL after each.
    const node = lab.nodes[0];
    const conf = (network: 'g' | 'o') => ({
      cniVersion: '1.1.0', name: 'nf', type: 'podlegs', underlay: { interface: 'ul0' },
      registry: { type: 'file', path: lab.registryDir }, stateDir: `${node.dir}/state`, log: { level: 'warn' },
      agent: { socket: node.agentSocket }, networks: NETWORKS, legs: [{ network, interface: 'net1', ips: [`10.${network === 'g' ? 30 : 40}.0.50/24`] }],
    });
    const times: Record<'g' | 'o', number[]> = { g: [], o: [] };
    for (let i = 0; i < adds; i++) {
      for (const network of (i % 2 === 0 ? ['g', 'o'] : ['o', 'g']) as ('g' | 'o')[]) {
        const pod = await lab.addPod(node, `add${network}${i}`);
        const t0 = process.hrtime.bigint();
        const r = await lab.exec(node, 'podlegs', { command: 'ADD', pod, conf: conf(network) });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.code !== 0) throw new Error(`ADD failed: ${r.stdout}${r.stderr}`);
        times[network].push(ms);
        await lab.exec(node, 'podlegs', { command: 'DEL', pod, conf: conf(network) });
        await lab.removePod(pod);
      }
    }
    console.log(`\nADD latency of one leg (served by the agent), ${adds} ADDs each, interleaved`);
    console.log(table(['leg', 'n', 'p50 ms', 'max ms'], [
      ['unguarded', adds, fmt(median(times.o), 1), fmt(Math.max(...times.o), 1)],
      ['guarded (security enforce)', adds, fmt(median(times.g), 1), fmt(Math.max(...times.g), 1)],
      ['difference (p50)', '', fmt(median(times.g) - median(times.o), 1), ''],
    ]));
  } finally {
    await lab.destroy();
    const leaks = await leakCheck(lab.prefix);
    if (leaks.length) console.error(`left behind: ${leaks.join(', ')}`);
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
