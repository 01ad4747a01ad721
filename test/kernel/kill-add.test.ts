// 50 trials of SIGKILL at a random moment of an ADD of 4 legs (two static, two host-local IPAM),
// each followed by the runtime's DEL with the same arguments: 25 kill the plugin process running
// the ADD in-process (no agent on the node), 25 kill the node agent while it serves the ADD (then
// start it again, as its DaemonSet would). After each DEL nothing is left (links in the node and
// the pod, FDB entries here and on the other node, state, registry, IPAM) and the ADD of a new
// pod works. The moment is a seeded random delay within the ADD's work on the node (from its first
// state write to its exit, the median of 3 ADDs measured first): a kill before that changes nothing.
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';
import { CniOutcome, Lab, LabNode, LabPod, LabProcess, leakCheck } from '../lab/lab';
import { agentProblems, CONVERGE_MS, sleep, startAgent, waitUntil } from '../lab/nf';
import { nodeLeaks, prng, reliabilityConf, testSeed } from './support/reliability';

const TRIALS = 25; // per way
const GRACE_S = 1;

type Json = Record<string, unknown>;
const LEGS: Json[] = [
  { network: 'a', interface: 'net1', ips: ['10.100.0.5/24'] },
  { network: 'b', interface: 'net2' },
  { network: 'c', interface: 'net3', ips: ['10.200.0.5/24'] },
  { network: 'd', interface: 'net4' },
];

let lab: Lab;
let node: LabNode;
let peer: LabNode;
let peerPod: LabPod;
let peerAgent: LabProcess;
let agent: LabProcess | undefined;
const seed = testSeed();
const random = prng(seed);

const noAgent = (): string => path.join(node.dir, 'nobody.sock');
const conf = (socket: string, prevResult?: unknown): Json => reliabilityConf(lab, node, LEGS, { socket, prevResult });
const stateFile = (pod: LabPod): string => path.join(node.dir, 'state', 'attachments', `${pod.containerId}_eth0.json`);
const mustOk = (o: CniOutcome, what: string): CniOutcome => {
  if (o.code !== 0) throw new Error(`${what}: exit ${o.code}: ${o.stdout} ${o.stderr}`);
  return o;
};

/** An ADD as the runtime starts it (nsenter execs the plugin: the PID is the plugin's), not awaited. */
function startAdd(pod: LabPod, socket: string): LabProcess {
  return lab.spawn(undefined, ['nsenter', `--net=${node.netns}`, '--', lab.podlegsBin], {
    stdin: JSON.stringify(conf(socket)),
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod.containerId, CNI_NETNS: pod.netns, CNI_IFNAME: 'eth0', CNI_PATH: lab.cniPath.join(':') },
  });
}
const del = (pod: LabPod, socket: string): Promise<CniOutcome> => lab.exec(node, 'podlegs', { command: 'DEL', pod, conf: conf(socket) });
const newPod = (name: string): Promise<LabPod> => lab.addPod(node, name);
/**
 * Resolves when the ADD's work on the node has begun: its attachment state (or that file's temp
 * file) exists, the first thing it writes before any kernel change; or when the ADD exited.
 */
async function workBegun(pod: LabPod, add: LabProcess): Promise<void> {
  const dir = path.dirname(stateFile(pod));
  const mine = (f: string): boolean => f.startsWith(pod.containerId) || f.startsWith(`.${pod.containerId}`);
  for (;;) {
    let names: string[] = [];
    try { names = readdirSync(dir); } catch { /* not yet */ }
    if (names.some(mine) || !add.running()) return;
    await sleep(2);
  }
}
/** Median of 3 ADD+DEL rounds (one round is a poor guess on a loaded machine): ms from the ADD's work begun to its exit. */
async function probe(socket: string): Promise<number> {
  const rounds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const pod = await newPod(`kprobe${i}`);
    const add = startAdd(pod, socket);
    await workBegun(pod, add);
    const t0 = performance.now();
    const exit = await add.exited;
    if (exit.code !== 0) throw new Error(`probe ADD: exit ${JSON.stringify(exit)}: ${add.stdout()} ${add.stderr()}`);
    rounds.push(performance.now() - t0);
    mustOk(await del(pod, socket), 'probe DEL');
    await lab.removePod(pod);
  }
  return rounds.sort((x, y) => x - y)[1];
}

/** What a SIGKILL interrupted, from the exit and the state the ADD left. */
function outcome(pod: LabPod, exit: { code: number | null; signal: string | null }, stdout: string): string {
  let complete: boolean | undefined;
  try { complete = (JSON.parse(readFileSync(stateFile(pod), 'utf8')) as { complete: boolean }).complete; } catch { /* none */ }
  const state = complete === undefined ? 'no state' : complete ? 'complete state' : 'partial state';
  if (exit.signal === 'SIGKILL') return `plugin killed, ${state}`;
  if (exit.code === 0) return `ADD finished, ${state}`;
  const code = (() => { try { return (JSON.parse(stdout) as { code?: number }).code; } catch { return undefined; } })();
  return `exit ${exit.code} code ${code}, ${state}`;
}

beforeAll(async () => {
  process.stdout.write(`kill-add: seed ${seed} (PODLEGS_TEST_SEED=${seed} replays it)\n`);
  lab = await Lab.create({ nodes: 2 });
  [node, peer] = lab.nodes;
  // A member on the other node (its agent follows this node's membership): flood lists to get right.
  peerAgent = await startAgent(lab, peer, { graceSeconds: GRACE_S });
  peerPod = await lab.addPod(peer, 'peer');
  mustOk(await lab.exec(peer, 'podlegs', { command: 'ADD', pod: peerPod, conf: reliabilityConf(lab, peer, [
    { network: 'a', interface: 'net1', ips: ['10.100.0.200/24'] }, { network: 'b', interface: 'net2', ips: ['10.30.0.200/24'] }]) }), 'peer ADD');
}, 120_000);

afterAll(async () => {
  await agent?.kill();
  if (peerPod) await lab.exec(peer, 'podlegs', { command: 'DEL', pod: peerPod, conf: reliabilityConf(lab, peer, []) });
  await peerAgent?.kill();
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 120_000);

/**
 * One trial: an ADD of a new pod, SIGKILL of `victim()` delayMs after the ADD's work began, then
 * (after restart) the runtime's DEL; nothing left; the ADD of another new pod works and is deleted.
 */
async function trial(i: number, socket: string, delayMs: number, victim: (add: LabProcess) => number, restart: () => Promise<void>): Promise<string> {
  const pod = await newPod(`k${i}`);
  const add = startAdd(pod, socket);
  await workBegun(pod, add);
  await sleep(delayMs);
  try { process.kill(victim(add), 'SIGKILL'); } catch { /* already exited */ }
  const exit = await add.exited;
  await restart();
  const what = outcome(pod, exit, add.stdout());
  mustOk(await del(pod, socket), `trial ${i} (${what}) DEL`);
  let leaks: string[] = [];
  await waitUntil('nothing left', async () => (leaks = await nodeLeaks(lab, node, [pod.nsName])).length === 0, CONVERGE_MS, 100).catch(() => undefined);
  expect({ trial: i, delayMs, what, leaks }).toEqual({ trial: i, delayMs, what, leaks: [] });
  await lab.removePod(pod);
  const next = await newPod(`k${i}n`);
  mustOk(await lab.exec(node, 'podlegs', { command: 'ADD', pod: next, conf: conf(socket) }), `trial ${i} (${what}) next ADD`);
  mustOk(await del(next, socket), `trial ${i} next DEL`);
  await lab.removePod(next);
  return what;
}

const tally = (outcomes: string[]): string => Object.entries(outcomes.reduce<Record<string, number>>((m, o) => ({ ...m, [o]: (m[o] ?? 0) + 1 }), {}))
  .map(([o, n]) => `${n}× ${o}`).join(', ');

test(`${TRIALS} SIGKILLs of the plugin at a random moment of an in-process ADD, each followed by DEL: nothing left, the next ADD works`, async () => {
  const workMs = await probe(noAgent());
  const outcomes: string[] = [];
  for (let i = 0; i < TRIALS; i++) outcomes.push(await trial(i, noAgent(), Math.round(random() * workMs), (add) => add.pid, async () => undefined));
  process.stdout.write(`kill-add in-process: ADD works ${workMs.toFixed(0)} ms on the node; ${TRIALS} kills in [0, ${workMs.toFixed(0)}) ms of it: ${tally(outcomes)}\n`);
}, 600_000);

test(`${TRIALS} SIGKILLs of the agent at a random moment of an ADD it serves, restart, DEL: nothing left, the next ADD works`, async () => {
  agent = await startAgent(lab, node, { graceSeconds: GRACE_S });
  const workMs = await probe(node.agentSocket);
  const outcomes: string[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const victim = agent;
    outcomes.push(await trial(100 + i, node.agentSocket, Math.round(random() * workMs), () => victim.pid, async () => {
      await victim.exited;
      agent = await startAgent(lab, node, { graceSeconds: GRACE_S });
    }));
    // The restarted agent served the DEL and the next ADD/DEL without a warning or an error.
    expect({ trial: 100 + i, problems: agentProblems(agent) }).toEqual({ trial: 100 + i, problems: [] });
  }
  process.stdout.write(`kill-add agent: ADD works ${workMs.toFixed(0)} ms in the agent; ${TRIALS} kills in [0, ${workMs.toFixed(0)}) ms of it: ${tally(outcomes)}\n`);
}, 900_000);
