// VRRP failover over a podlegs leg (prints figures, asserts nothing): the lab of
// test/lab/keepalived.test.ts (3 nodes, agents, keepalived nf1 priority 150 / nf2 100 on net1,
// VNI 100, a client pinging the VIP), N rounds of kill -9 of the master's keepalived (measured:
// kill -> VIP on the backup, kill -> client served by the backup, pings lost) followed by the
// restarted master preempting again (restart -> VIP and client back on nf1). The test asserts
// that failover happens; how fast it happens is this figure. Bundled and run by
// scripts/bench-failover.mjs, as root.
import { Lab, leakCheck } from '../../test/lab/lab';
import {
  addNfPod, CONVERGE_MS, crashKeepalived, FailoverTimes, Keepalived, macOf, measureFailover, neighMac, pingOnce, startAgent,
  startKeepalived, vipOwner, VrrpOptions, waitUntil,
} from '../../test/lab/nf';
import { fmt, quantile, table } from './stats.mjs';

const VIP = '10.100.0.100/24';
const VIP_IP = VIP.split('/')[0];
const vrrp = (routerId: string, priority: number): VrrpOptions => ({ routerId, vrid: 51, priority, vip: VIP, advertInt: 1 });

async function main(): Promise<void> {
  const i = process.argv.indexOf('--rounds');
  const rounds = i >= 0 ? Number(process.argv[i + 1]) : 8;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: bench-failover [--rounds N]   (N >= 1, default 8)');
  const lab = await Lab.create({ nodes: 3, podlegsBin: process.env.PODLEGS_BIN });
  const stop = (): void => { void lab.destroy().finally(() => process.exit(130)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const n of lab.nodes) await startAgent(lab, n);
    const leg = (ip: string) => [{ network: 'a', interface: 'net1', ips: [ip] }];
    const nf1 = await addNfPod(lab, lab.nodes[0], 'nf1', leg('10.100.0.1/24'));
    const nf2 = await addNfPod(lab, lab.nodes[1], 'nf2', leg('10.100.0.2/24'));
    const client = await addNfPod(lab, lab.nodes[2], 'client', leg('10.100.0.3/24'));
    const owner = async (): Promise<string | undefined> => (await vipOwner(lab, [nf1.pod, nf2.pod], VIP))?.name;
    const mac1 = await macOf(lab, nf1.pod.nsName, 'net1');
    const backOnNf1 = async (): Promise<void> => {
      await waitUntil('nf1 to own the VIP alone', async () => (await owner()) === 'nf1', CONVERGE_MS);
      await waitUntil('client to follow nf1', async () => (await pingOnce(lab, client.pod, VIP_IP, 0.5)) && (await neighMac(lab, client.pod, VIP_IP)) === mac1, CONVERGE_MS);
    };
    let ka1: Keepalived;
    let ka2: Keepalived;
    [ka1, ka2] = await Promise.all([startKeepalived(lab, nf1.pod, vrrp('nf1', 150)), startKeepalived(lab, nf2.pod, vrrp('nf2', 100))]);
    await backOnNf1();
    const fail: FailoverTimes[] = [];
    const preempt: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const { at } = await crashKeepalived(ka1);
      const t = await measureFailover(lab, at, nf2.pod, client.pod, VIP);
      fail.push(t);
      await lab.sh(`ip addr del ${VIP} dev net1`, { netns: nf1.pod.nsName }); // what a restarted pod would not have
      const t0 = Date.now();
      ka1 = await startKeepalived(lab, nf1.pod, vrrp('nf1', 150));
      await backOnNf1();
      preempt.push(Date.now() - t0);
      process.stdout.write(`round ${String(r).padStart(2)}: VIP on nf2 +${String(t.vipMs).padStart(5)} ms, client served by nf2 +${String(t.clientMs).padStart(5)} ms` +
        ` (${t.lostPings}/${t.sentPings} pings lost); nf1 back +${String(preempt[r - 1]).padStart(5)} ms after its restart\n`);
    }
    await ka1.proc.kill();
    await ka2.proc.kill();
    const row = (what: string, v: number[]): (string | number)[] => [what, v.length, fmt(quantile(v, 0.5), 0), fmt(quantile(v, 0.9), 0), fmt(Math.max(...v), 0)];
    console.log(`\nVRRP failover over a podlegs leg (keepalived, advert_int 1 s: master down after 3 missed adverts + skew), ${rounds} rounds`);
    console.log(table(['measure', 'n', 'p50 ms', 'p90 ms', 'max ms'], [
      row('kill -9 -> VIP on the backup', fail.map((t) => t.vipMs)),
      row('kill -9 -> client served by the backup', fail.map((t) => t.clientMs)),
      row('pings lost (every 100 ms)', fail.map((t) => t.lostPings)),
      row('master restart -> VIP and client back', preempt),
    ]));
  } finally {
    await lab.destroy();
    const leaks = await leakCheck(lab.prefix);
    if (leaks.length) console.error(`left behind: ${leaks.join(', ')}`);
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
