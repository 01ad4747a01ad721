/**
 * The podlegs demo (run by test/lab/demo.sh, bundled with esbuild; needs root and dist/podlegs):
 * a 3-node namespace lab, [ptp, podlegs] chained for three pods, a keepalived VRRP pair on two
 * nodes and a client on the third, a crash of the master, the measured failover, cleanup.
 *
 * Environment: PODLEGS_BIN (the plugin, required), DEMO_PREFIX_FILE (where to write the lab's
 * namespace prefix for the shell's last-resort cleanup), DEMO_CRASH = "pod" (default: keepalived
 * is killed with SIGKILL and the pod's netns disappears) or "keepalived" (SIGKILL only: the
 * VIP stays on the dead master, the client follows the backup's gratuitous ARP).
 */
import { writeFileSync } from 'node:fs';
import { Lab, LabNode, LabProcess, leakCheck } from '../lab';
import {
  addNfPod, addrsOf, CONVERGE_MS, crashKeepalived, delNfPod, floodDsts, Keepalived, macOf, measureFailover, neighMac, NfPod,
  nodeLeftovers, pingOnce, startAgent, startKeepalived, vipOwner, VrrpOptions, waitUntil,
} from '../nf';

const VIP = '10.100.0.100/24';
const VIP_IP = '10.100.0.100';
const VNI = 100;
const crashMode = process.env.DEMO_CRASH === 'keepalived' ? 'keepalived' : 'pod';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
let stepNo = 0;
const STEPS = 7;
const step = (s: string): void => console.log(`\n${bold(`[${++stepNo}/${STEPS}] ${s}`)}`);
const say = (s: string): void => console.log(`      ${s}`);

let lab: Lab | undefined;
let cleaning: Promise<void> | undefined;

async function cleanup(): Promise<string[]> {
  const l = lab;
  if (!l) return [];
  cleaning ??= l.destroy();
  await cleaning;
  return leakCheck(l.prefix);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (cleaning) return;
    console.log(`\n${sig}: removing the lab ...`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

async function main(): Promise<void> {
  const bin = process.env.PODLEGS_BIN;
  if (!bin) throw new Error('PODLEGS_BIN is not set (demo.sh sets it to dist/podlegs)');
  const t0 = Date.now();
  console.log(bold('podlegs demo: a keepalived VRRP pair on two nodes, over a VXLAN leg, failing over after a crash'));

  step('lab: 3 nodes (network namespaces) on one underlay switch');
  lab = await Lab.create({ nodes: 3, podlegsBin: bin });
  const l = lab;
  if (process.env.DEMO_PREFIX_FILE) writeFileSync(process.env.DEMO_PREFIX_FILE, l.prefix);
  for (const n of l.nodes) say(`${n.name}: netns ${n.nsName}, underlay ul0 ${n.vtep}/24 (its VTEP)`);

  const agents: LabProcess[] = [];
  for (const n of l.nodes) agents.push(await startAgent(l, n));
  say(`podlegs agent running on ${l.nodes.map((n) => n.name).join(', ')} (keeps flood lists equal to the shared file registry)`);

  step('pods: CNI chain [ptp (stand-in for Cilium), podlegs], one leg each on network "a" (VNI 100)');
  const leg = (ip: string) => [{ network: 'a', interface: 'net1', ips: [ip] }];
  const [n1, n2, n3] = l.nodes as [LabNode, LabNode, LabNode];
  const nf1 = await addNfPod(l, n1, 'nf1', leg('10.100.0.1/24'));
  const nf2 = await addNfPod(l, n2, 'nf2', leg('10.100.0.2/24'));
  const client = await addNfPod(l, n3, 'client', leg('10.100.0.3/24'));
  for (const p of [nf1, nf2, client]) {
    const res = l.cachedResult(p.pod, p.conf.name) as { ips: { address: string }[] };
    const eth0 = res.ips.find((ip) => ip.address.startsWith('10.10.'))?.address ?? '?';
    say(`${p.pod.name.padEnd(6)} on ${p.pod.node.name}: eth0 ${eth0} (ptp, default route), net1 ${p.legs[0].ips?.[0]} (VNI ${VNI}, MAC ${await macOf(l, p.pod.nsName, 'net1')})`);
  }
  await waitUntil('flood lists', async () => {
    for (const n of l.nodes) if ((await floodDsts(l, n, VNI))?.length !== 2) return false;
    return true;
  }, CONVERGE_MS);
  for (const n of l.nodes) say(`${n.name} plvx${VNI} floods BUM traffic to ${(await floodDsts(l, n, VNI))?.join(', ')}`);

  step('keepalived in nf1 (priority 150) and nf2 (priority 100): VRRP id 51 on net1, VIP 10.100.0.100, advert_int 1 s');
  const vrrp = (routerId: string, priority: number): VrrpOptions => ({ routerId, vrid: 51, priority, vip: VIP, advertInt: 1 });
  const tStart = Date.now();
  const ka: Keepalived[] = await Promise.all([startKeepalived(l, nf1.pod, vrrp('nf1', 150)), startKeepalived(l, nf2.pod, vrrp('nf2', 100))]);
  const owner = async (): Promise<string | undefined> => (await vipOwner(l, [nf1.pod, nf2.pod], VIP))?.name;
  await waitUntil('nf1 to own the VIP', async () => (await owner()) === 'nf1', CONVERGE_MS);
  say(`VIP owner: ${bold('nf1')} (elected ${secs(Date.now() - tStart)} after start; nf2 is backup)`);
  await waitUntil('client ping to the VIP', () => pingOnce(l, client.pod, VIP_IP, 1), CONVERGE_MS);
  say(`client -> ${VIP_IP}: ping ok, ARP entry ${await neighMac(l, client.pod, VIP_IP)} (nf1's net1)`);

  step(crashMode === 'pod'
    ? 'crash: kill -9 of keepalived in nf1, and pod nf1 is gone (its netns and leg vanish)'
    : 'crash: kill -9 of keepalived in nf1 (the VIP stays on its net1, nothing tells the others)');
  const { at: killedAt, vrrpPid, parentPid } = await crashKeepalived(ka[0]);
  say(`SIGKILL to keepalived's VRRP process (PID ${vrrpPid}) and its parent (PID ${parentPid}) at ${new Date(killedAt).toISOString().slice(11, 23)}`);
  if (crashMode === 'pod') await l.removePod(nf1.pod);
  const t = await measureFailover(l, killedAt, nf2.pod, client.pod, VIP);
  say(`VIP owner: ${bold('nf2')} after ${bold(secs(t.vipMs))} (VRRP master-down timer: 3 missed adverts + skew)`);
  say(`client -> ${VIP_IP}: answered by nf2 (ARP entry ${await neighMac(l, client.pod, VIP_IP)}, from its gratuitous ARP) after ${bold(secs(t.clientMs))}`);
  say(`client pings during the failover: ${t.lostPings} of ${t.sentPings} lost (one every 100 ms, 200 ms timeout)`);

  step('the client keeps being served by the new master');
  let ok = 0;
  for (let i = 0; i < 5; i++) if (await pingOnce(l, client.pod, VIP_IP, 1)) ok++;
  const holders = [];
  for (const p of [nf1, nf2]) if (crashMode === 'keepalived' || p !== nf1) if ((await addrsOf(l, p.pod.nsName, 'net1')).includes(VIP_IP)) holders.push(p.pod.name);
  say(`${ok}/5 pings to the VIP answered; VIP configured on: ${holders.join(', ')}${holders.length > 1 ? ' (the stale copy on dead nf1 no longer gets traffic)' : ''}`);

  step('cleanup: keepalived stopped, CNI DEL of every pod, agents stopped');
  await ka[1].proc.kill();
  const pods: NfPod[] = [nf1, nf2, client];
  for (const p of pods) await delNfPod(l, p);
  say(`DEL done (nf1 ${crashMode === 'pod' ? 'from its recorded state, its netns was gone' : 'normally'})`);
  const left = await nodeLeftovers(l);
  say(left.length ? `LEFT BEHIND: ${left.join(', ')}` : 'nodes: no pl* link, no registry entry, no state file left');
  for (const a of agents) await a.kill();

  step('lab removed');
  const leaks = await cleanup();
  say(leaks.length ? `LEAKS: ${leaks.join(', ')}` : `no namespace, process or temp dir left (lab ${l.prefix})`);
  console.log(`\n${bold(`failover ${secs(t.vipMs)}, client recovered in ${secs(t.clientMs)}`)}; demo took ${secs(Date.now() - t0)}`);
  if (left.length || leaks.length || ok === 0) process.exitCode = 1;
}

main().catch(async (e: unknown) => {
  if (cleaning) return; // interrupted: the signal handler cleans up and exits
  console.error(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}`);
  const leaks = await cleanup().catch((err: unknown) => [String(err)]);
  if (leaks.length) console.error(`left behind: ${leaks.join(', ')}`);
  process.exitCode = 1;
});
