// Kubelet starts a node's pods in parallel: 16 ADDs at once on one node, their legs on the
// same two segments, then 16 DELs at once, three rounds. With the old PID-file lock a waiter
// recreated the lock file empty and every later call on the node failed with code 11; the
// flock(2) lock has no file state to get wrong. Both ways a call can run: in-process (no
// agent on the node) and served by the node agent over its socket.
import * as fs from 'fs';
import * as path from 'path';
import { Lab, LabNode, LabPod, LabProcess, CniOutcome, leakCheck } from '../lab/lab';
import { filesUnder, floodDsts, startAgent } from '../lab/nf';
import { waitUntil } from '../support/wait';

const PODS = 16;
const ROUNDS = 3;

let lab: Lab;
let node: LabNode;
let peer: LabNode;
let peerPod: LabPod;
let agent: LabProcess | undefined; // on `node`, while the "through the agent" rounds run

type Json = Record<string, unknown>;

function conf(n: LabNode, i: number): Json {
  return {
    // Through the agent: its socket; in-process: a socket path where nothing listens.
    agent: { socket: agent && n === node ? n.agentSocket : path.join(n.dir, 'no-agent.sock') },
    cniVersion: '1.0.0', name: 'lab', type: 'podlegs',
    underlay: { interface: 'ul0' },
    registry: { type: 'file', path: lab.registryDir },
    stateDir: path.join(n.dir, 'state'),
    log: { file: path.join(n.dir, 'podlegs.log'), level: 'info' },
    networks: {
      'vrrp-a': { vni: 100 },
      'nf-b': { vni: 200, ipam: { type: 'host-local', subnet: '10.30.0.0/24', dataDir: path.join(n.dir, 'ipam') } },
    },
    legs: [{ network: 'vrrp-a', interface: 'net1', ips: [`10.100.0.${10 + i}/24`] }, { network: 'nf-b', interface: 'net2' }],
  };
}

const call = (command: 'ADD' | 'DEL', pod: LabPod, i: number): Promise<CniOutcome> =>
  lab.exec(pod.node, 'podlegs', { command, pod, conf: conf(pod.node, i) });

/** The node's bridge ports per segment, from the kernel. */
async function ports(n: LabNode): Promise<Record<string, number>> {
  const links = JSON.parse((await lab.sh('ip -j link show', { netns: n.nsName })).stdout) as { ifname: string; master?: string }[];
  const out: Record<string, number> = {};
  for (const l of links) if (l.master && /^plbr\d+$/.test(l.master)) out[l.master] = (out[l.master] ?? 0) + 1;
  return out;
}

const registryOf = (n: LabNode): string[] => filesUnder(lab.registryDir).filter((f) => fs.readFileSync(f, 'utf8').includes(`"${n.vtep}"`));
const podlegsLinks = async (n: LabNode): Promise<string[]> =>
  (JSON.parse((await lab.sh('ip -j link show', { netns: n.nsName })).stdout) as { ifname: string }[]).map((l) => l.ifname).filter((x) => /^pl/.test(x));
const allocations = (n: LabNode): string[] => filesUnder(path.join(n.dir, 'ipam')).filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f));

const mustOk = (o: CniOutcome, what: string): void => {
  if (o.code !== 0) throw new Error(`${what}: exit ${o.code}: ${o.stdout} ${o.stderr}`);
};

beforeAll(async () => {
  lab = await Lab.create({ nodes: 2 });
  [node, peer] = lab.nodes;
  // A member on the other node, so both segments have a flood list to get right.
  peerPod = await lab.addPod(peer, 'peer');
  mustOk(await call('ADD', peerPod, 200), 'peer ADD');
}, 60_000);

afterAll(async () => {
  await agent?.kill();
  if (peerPod) await call('DEL', peerPod, 200);
  await lab?.destroy();
  expect(await leakCheck(lab?.prefix)).toEqual([]);
}, 120_000);

/** The agent's grace period in the "through the agent" rounds. */
const GRACE_S = 2;
const served = (): number => (agent?.stderr().match(/"message":"CNI call served"/g) ?? []).length;

test.each(['in-process', 'through the agent'])(`${PODS} concurrent ADDs then ${PODS} concurrent DELs on one node, legs sharing 2 segments, ${ROUNDS} rounds, %s`, async (how) => {
  if (how === 'through the agent') agent = await startAgent(lab, node, { graceSeconds: GRACE_S });
  for (let round = 0; round < ROUNDS; round++) {
    const servedBefore = served();
    const pods = await Promise.all(Array.from({ length: PODS }, (_, i) => lab.addPod(node, `c${round}x${i}`)));
    try {
      const adds = await Promise.all(pods.map((p, i) => call('ADD', p, i)));
      expect({ round, failed: adds.map((o, i) => (o.code === 0 ? '' : `pod ${i}: ${o.stdout}`)).filter(Boolean) }).toEqual({ round, failed: [] });

      // One segment per VNI with every pod's leg on it; the flood list names the peer once (the
      // peer's own list follows only through the peer's agent, which this test does not run).
      expect(await ports(node)).toEqual({ plbr100: PODS + 1, plbr200: PODS + 1 }); // + the VXLAN device
      expect(await floodDsts(lab, node, 100)).toEqual([peer.vtep]);
      expect(await floodDsts(lab, node, 200)).toEqual([peer.vtep]);
      expect(registryOf(node)).toHaveLength(2 * PODS);
      expect(allocations(node)).toHaveLength(PODS);
      expect(filesUnder(path.join(node.dir, 'state', 'attachments'))).toHaveLength(PODS);

      const dels = await Promise.all(pods.map((p, i) => call('DEL', p, i)));
      expect({ round, failed: dels.map((o, i) => (o.code === 0 ? '' : `pod ${i}: ${o.stdout}`)).filter(Boolean) }).toEqual({ round, failed: [] });
      if (agent) {
        // The legs went with the DELs; the emptied segments are the agent's to remove, after its grace period.
        expect((await podlegsLinks(node)).sort()).toEqual(['plbr100', 'plbr200', 'plvx100', 'plvx200']);
        await waitUntil('the agent removes the emptied segments', async () => (await podlegsLinks(node)).length === 0, GRACE_S * 1000 + 60_000, 100);
      }
      expect(await podlegsLinks(node)).toEqual([]);
      expect(registryOf(node)).toEqual([]);
      expect(allocations(node)).toEqual([]);
      expect(filesUnder(path.join(node.dir, 'state', 'attachments'))).toEqual([]);
      // Every call of the round went where it should: all to the agent, or none.
      expect(served() - servedBefore).toBe(agent ? 2 * PODS : 0);
      if (agent) expect(agent.running()).toBe(true);
    } finally {
      for (const [i, p] of pods.entries()) {
        await call('DEL', p, i);
        await lab.removePod(p);
      }
    }
  }
}, 600_000);
