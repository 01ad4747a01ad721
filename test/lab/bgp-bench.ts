/**
 * Bench: time from an NF pod's eth0 IP change (restart: DEL, new sandbox, ADD with a new address)
 * to BGP Established at the node speaker, p50 over N restarts. Run through scripts/bench-bgp.mjs
 * (which bundles this file); prints figures, asserts nothing. Same lab as test/lab/bgp.test.ts.
 */
import { Lab, leakCheck } from './lab';
import { addNf, buildBgpLab, LB_ASN, restartNf, startPodFrr, waitEstablished } from './bgp-lab';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

async function main(): Promise<void> {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const restarts = arg('--restarts', 12);
  if (!Number.isInteger(restarts) || restarts < 1) throw new Error('--restarts N (N >= 1)');
  const lab = await Lab.create({ nodes: 1 });
  const stop = (): void => { void lab.destroy().finally(() => process.exit(130)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const b = await buildBgpLab(lab);
    let pod = await addNf(lab, b.node, 'lb0', { app: 'lb' });
    await startPodFrr(lab, pod, LB_ASN, ['198.51.100.10/32']);
    await waitEstablished(lab, b.node, pod.ip);
    const total: number[] = [];
    const sync: number[] = [];
    const late: number[] = [];
    for (let i = 1; i <= restarts; i++) {
      const r = await restartNf(b, pod, `lb${i}`, LB_ASN, ['198.51.100.10/32']);
      pod = r.pod;
      total.push(r.ms);
      sync.push(r.syncMs);
      process.stdout.write(`restart ${String(i).padStart(2)}: eth0 ${pod.ip.padEnd(12)} neighbor configured +${String(r.syncMs).padStart(4)} ms, Established +${String(r.ms).padStart(5)} ms\n`);
    }
    for (let i = 1; i <= restarts; i++) {
      const r = await restartNf(b, pod, `lb${restarts + i}`, LB_ASN, ['198.51.100.10/32'], { frrAfterSync: true });
      pod = r.pod;
      late.push(r.ms);
      process.stdout.write(`restart ${String(restarts + i).padStart(2)} (FRR starts after bgp-sync): eth0 ${pod.ip.padEnd(12)} Established +${String(r.ms).padStart(5)} ms\n`);
    }
    const line = (what: string, xs: number[]): string =>
      `${what.padEnd(48)} p50 ${String(pct(xs, 50)).padStart(5)} ms   min ${String(Math.min(...xs)).padStart(5)}   p90 ${String(pct(xs, 90)).padStart(5)}   max ${String(Math.max(...xs)).padStart(5)}`;
    process.stdout.write(`\nBGP re-peering after a pod restart with a new eth0 IP (${restarts} restarts; gobgpd node speaker + podlegs bgp-sync, FRR in the pod)\n`);
    process.stdout.write(`${line('new IP (ADD done) -> neighbor in gobgpd', sync)}\n`);
    process.stdout.write(`${line('new IP (ADD done) -> BGP Established', total)}\n`);
    process.stdout.write(`${line('same, FRR started once the neighbor exists', late)}\n`);
    const passes = b.bgpSync.stderr().split('\n').filter((l) => l.includes('"message":"applied"'))
      .map((l) => (JSON.parse(l) as { ms: number }).ms).slice(-4 * restarts);
    if (passes.length) process.stdout.write(`${line('bgp-sync pass that changed gobgpd (read+apply)', passes)}\n`);
    process.stdout.write('(Established includes FRR start-up in the new pod; about 1 s of it is bgpd\'s start timer: a neighbor waits\n'
      + ' BGP_INIT_START_TIMER = 1 s before its first connect. Whether FRR starts at once or after bgp-sync configured the neighbor\n'
      + ' makes no difference: bgp-sync is not on the critical path.)\n');
  } finally {
    await lab.destroy();
    const leaks = await leakCheck(lab.prefix);
    if (leaks.length) process.stderr.write(`leftovers: ${leaks.join(', ')}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-bgp: ${(e as Error).message}\n`);
  process.exit(1);
});
