// `podlegs agent --config FILE`: runs in the node's netns until SIGTERM/SIGINT.
// Startup order matters: the single-instance lock first (a second agent must
// not even bind the metrics port), then the underlay, then the loop, then the
// CNI socket (agent.socket): from then on the plugin's thin client hands its
// calls here and runCni runs them in this process, as the plugin would.
import * as os from 'os';
import { Kernel } from '../../overlay/kernel/kernel';
import { resolveUnderlay } from '../../overlay/underlay';
import { WatchedFileRegistry } from '../../overlay/registry/file-registry';
import { MembershipSource, vtepProblem } from '../../overlay/registry/member';
import { Agent } from '../../overlay/agent/agent';
import { AgentMetrics } from '../../overlay/agent/metrics';
import { serveHttp } from '../../overlay/agent/http';
import { serveCni } from '../../overlay/agent/cni-server';
import { acquireAgentLock } from '../../overlay/agent/lock';
import { withNodeLock } from '../../overlay/node-lock';
import { listStates } from '../cni/state';
import { legVnis } from '../cni/trunk';
import { runCni } from '../dispatch/run';
import { createLog, Log } from '../log';
import type { NodeConf } from './node-config';

/** The membership source named by the config: the shared file registry, or the Kubernetes API. */
async function membershipSource(conf: NodeConf, node: string, vtep: string, log: Log, kick: () => void): Promise<{ source: MembershipSource; stop(): void }> {
  if (conf.registry.type === 'file') return { source: new WatchedFileRegistry(conf.registry.path), stop: () => undefined };
  const { KubernetesNodeSide } = await import('../../overlay/agent/k8s/node-side');
  const { nadVnis } = await import('../k8s/nad'); // the plugin's NAD parser, handed to the agent
  const side = await KubernetesNodeSide.create(conf.kubernetes!.kubeconfig, { stateDir: conf.stateDir, nodeName: node, vtep, log, nadVnis });
  const hotplug = await (await import('../hotplug/start')).startHotPlug(conf, node, side, log, kick);
  side.start();
  return { source: side.membership, stop: () => { void hotplug?.stop(); side.stop(); } };
}

/** VNIs of ADDs in flight (state recorded, not complete): their segments may be empty for a moment. */
function busyVnis(stateDir: string): Set<number> {
  const out = new Set<number>();
  for (const s of listStates(stateDir).states) if (!s.complete) for (const l of s.legs) for (const v of legVnis(l)) out.add(v);
  return out;
}

/** agent.resyncSeconds, unless PODLEGS_RESYNC_MS overrides it (tests, debugging). */
function resyncMs(conf: NodeConf): number {
  const env = process.env.PODLEGS_RESYNC_MS;
  if (env === undefined || env === '') return conf.agent.resyncSeconds * 1000;
  const ms = Number(env);
  if (!Number.isFinite(ms) || ms < 100 || ms > 3_600_000) throw new Error(`PODLEGS_RESYNC_MS must be 100 to 3600000, got ${env.slice(0, 20)}`);
  return ms;
}

export async function runAgent(conf: NodeConf): Promise<number> {
  const node = process.env.NODE_NAME || os.hostname();
  const log = createLog(conf.log, { component: 'agent', node }, !conf.log.file);
  const startedAt = new Date().toISOString();
  let agent: Agent | undefined;
  let vtep: string | undefined;
  const lock = await acquireAgentLock(() => ({ pid: process.pid, node, vtep, startedAt, metricsAddress: conf.agent.metricsAddress, ...agent?.health() }));
  const k = Kernel.open();
  try {
    const u = await resolveUnderlay(k, conf.underlay);
    const bad = vtepProblem(u.vtep);
    if (bad) throw new Error(`this node's ${bad}; set underlay.vtep to a unicast address`);
    let kickAgent = (): void => undefined; // a hot-plugged leg's segment gets its flood list at once, not at the next event
    const { source, stop: stopSource } = await membershipSource(conf, node, u.vtep, log, () => kickAgent());
    vtep = u.vtep;
    const metrics = new AgentMetrics({ processMetrics: true });
    const a = new Agent(k, source, {
      localVtep: u.vtep,
      resyncMs: resyncMs(conf),
      graceMs: conf.agent.gracePeriodSeconds * 1000,
      debounceMs: conf.agent.debounceMs,
      log, metrics,
      busyVnis: () => busyVnis(conf.stateDir),
      exclusive: (fn) => withNodeLock(conf.stateDir, fn, 2000),
    });
    agent = a;
    const server = await serveHttp(conf.agent.metricsAddress, {
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
      health: () => a.health(),
    });
    a.start();
    kickAgent = () => a.kick('event', 0);
    let cni;
    try {
      cni = await serveCni(conf.agent.socket, runCni, log);
    } catch (e) {
      await a.stop();
      stopSource();
      server.close();
      throw e;
    }
    log.info('agent started', { vtep: u.vtep, registry: conf.registry.type === 'file' ? conf.registry.path : 'kubernetes', pid: process.pid, metrics: conf.agent.metricsAddress, ...conf.agent });
    process.stderr.write(`podlegs agent: running (pid ${process.pid}, vtep ${u.vtep}, metrics http://${conf.agent.metricsAddress}/metrics, CNI ${conf.agent.socket})\n`);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    // Calls in flight finish; new ones run in-process (no socket) until an agent is back.
    await cni.close();
    // The kernel keeps every entry: a restarted agent diffs against it, traffic never stops.
    await a.stop();
    stopSource();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    log.info('agent stopped', { signal });
    return 0;
  } finally {
    k.close();
    await lock.release();
  }
}
