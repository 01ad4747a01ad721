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
import { guardedDevices } from '../cni/guarded-devices';
import { GuardDrops } from '../../overlay/agent/guard-drops';
import { legVnis } from '../cni/trunk';
import { EditOutcome, runTrunkEdits, staticTrunkLookup, TrunkLookup } from '../cni/trunk-edit';
import { runCni } from '../dispatch/run';
import { createLog, Log } from '../log';
import type { NodeConf } from './node-config';
import type { KubernetesNodeSide } from '../../overlay/agent/k8s/node-side';

/** Kubernetes mode: trunk NAD edits (their lookup from the NAD watch, and what to publish after). */
interface NadTrunks { lookup: TrunkLookup; publish(outcomes: EditOutcome[]): Promise<void> }

/** The membership source named by the config: the shared file registry, or the Kubernetes API. */
type WarnPod = (ref: { namespace: string; name: string }, ifname: string, network: string, drops: number) => Promise<void>;

async function membershipSource(conf: NodeConf, node: string, vtep: string, log: Log, kick: () => void, onNads: (t: NadTrunks) => void): Promise<{ source: MembershipSource; stop(): void; warnPod?: WarnPod }> {
  if (conf.registry.type === 'file') return { source: new WatchedFileRegistry(conf.registry.path), stop: () => undefined };
  const [nodeSide, { nadVnis }, { nadTrunkLookup, publishEdits }] = await Promise.all([
    import('../../overlay/agent/k8s/node-side'), import('../k8s/nad'), import('../k8s/trunk-nads')]); // the plugin's NAD parser, handed to the agent
  const k8s = conf.kubernetes!;
  const side: KubernetesNodeSide = await nodeSide.KubernetesNodeSide.create(k8s.kubeconfig, {
    stateDir: conf.stateDir, nodeName: node, vtep, log, nadVnis,
    onNads: () => onNads({
      lookup: nadTrunkLookup(side.nads.items.values(), k8s),
      publish: (outcomes) => publishEdits(side.client, outcomes, {
        host: node, log, uidOf: (ns, name) => side.membership.pods.items.get(`${ns}/${name}`)?.metadata.uid,
      }),
    }),
  });
  const hotplug = await (await import('../hotplug/start')).startHotPlug(conf, node, side, log, kick);
  side.start();
  return { source: side.membership, stop: () => { void hotplug?.stop(); side.stop(); }, warnPod: (ref, ifname, network, drops) => side.warnSpoofing(ref, ifname, network, drops) };
}

/** VNIs of ADDs in flight (state recorded, not complete): their segments may be empty for a moment. */
function busyVnis(stateDir: string): Set<number> {
  const out = new Set<number>();
  for (const s of listStates(stateDir).states) if (!s.complete) for (const l of s.legs) for (const v of legVnis(l)) out.add(v);
  return out;
}

/** How often the leg guards' drop counters are read for the warning (metrics read them on every scrape). */
function guardPollMs(): number {
  const ms = Number(process.env.PODLEGS_GUARD_POLL_MS ?? '');
  return Number.isFinite(ms) && ms >= 100 && ms <= 3_600_000 ? ms : 10_000;
}

/** agent.resyncSeconds, unless PODLEGS_RESYNC_MS overrides it (tests, debugging). */
function resyncMs(conf: NodeConf): number {
  const env = process.env.PODLEGS_RESYNC_MS;
  if (env === undefined || env === '') return conf.agent.resyncSeconds * 1000;
  const ms = Number(env);
  if (!Number.isFinite(ms) || ms < 100 || ms > 3_600_000) throw new Error(`PODLEGS_RESYNC_MS must be 100 to 3600000, got ${env.slice(0, 20)}`);
  return ms;
}

/**
 * `podlegs agent --config FILE`. `reload` re-reads FILE: on SIGHUP the trunk networks of the
 * new config are applied to the running trunk legs of static mode (their VLAN lists; the
 * rest of the file needs a restart). Done once at start too: the file may have changed
 * while no agent ran.
 */
export async function runAgent(conf: NodeConf, reload?: () => NodeConf): Promise<number> {
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
    let onNadTrunks: (t: NadTrunks) => void = () => undefined; // set once the loop runs
    let kickAgent = (): void => undefined; // a hot-plugged leg's segment gets its flood list at once, not at the next event
    const { source, stop: stopSource, warnPod } = await membershipSource(conf, node, u.vtep, log, () => kickAgent(), (t) => onNadTrunks(t));
    vtep = u.vtep;
    const metrics = new AgentMetrics({ processMetrics: true });
    const a = new Agent(k, source, {
      localVtep: u.vtep,
      port: conf.underlay.port,
      resyncMs: resyncMs(conf),
      graceMs: conf.agent.gracePeriodSeconds * 1000,
      debounceMs: conf.agent.debounceMs,
      log, metrics,
      busyVnis: () => busyVnis(conf.stateDir),
      // Never waits: a served call may hold the lock while it waits for this agent's run.
      exclusive: (fn) => withNodeLock(conf.stateDir, fn, 0),
    });
    agent = a;
    const guardKernel = Kernel.open();
    const guards = new GuardDrops(guardKernel, () => guardedDevices(listStates(conf.stateDir).states), {
      metrics,
      onDrops: (d, fresh) => {
        log.warn('leg guard dropped spoofed frames', { network: d.network, pod: d.pod, interface: d.interface, hostIf: d.hostIf, drops: d.drops, new: fresh });
        if (d.podRef && warnPod) void warnPod(d.podRef, d.interface, d.network, fresh);
      },
    });
    const pollGuards = (): Promise<unknown> => guards.poll().catch((e: Error) => log.warn('could not read leg guard counters', { error: e.message }));
    const guardTimer = setInterval(() => void pollGuards(), guardPollMs());
    guardTimer.unref();
    const server = await serveHttp(conf.agent.metricsAddress, {
      metrics: async () => { await pollGuards(); return { contentType: metrics.contentType, body: await metrics.text() }; },
      health: () => a.health(),
    });
    a.start();
    kickAgent = () => a.kick('event', 0);
    let cni;
    try {
      const writer = a.nodeWriter();
      cni = await serveCni(conf.agent.socket, (env, stdin) => runCni(env, stdin, writer), log);
    } catch (e) {
      await a.stop();
      stopSource();
      server.close();
      throw e;
    }
    // Trunk VLAN edits, one pass at a time (a SIGHUP or NAD event during one runs another after it).
    let edits: Promise<unknown> = Promise.resolve();
    const warned = new Map<string, string>();
    const editTrunks = (c: NodeConf, lookup: TrunkLookup, trigger: string, publish?: NadTrunks['publish']): Promise<unknown> => (edits = edits.then(async () => {
      try {
        const done = await withNodeLock(c.stateDir, () => runTrunkEdits(
          { node: k, stateDir: c.stateDir, u, port: c.underlay.port, log, warned, listStates: () => listStates(c.stateDir).states }, lookup), 10_000);
        if (done.some((d) => 'plan' in d)) a.kick('event', 0); // flood lists of new segments now
        if (done.length) await publish?.(done);
      } catch (e) {
        log.warn('trunk edits not applied', { trigger, error: (e as Error).message });
      }
    }));
    void editTrunks(conf, staticTrunkLookup(conf), 'start');
    onNadTrunks = (t) => void editTrunks(conf, t.lookup, 'NAD change', t.publish);
    const onHup = (): void => {
      let next: NodeConf;
      try {
        next = reload ? reload() : conf;
      } catch (e) {
        log.warn('config reload on SIGHUP failed; nothing changed', { error: (e as Error).message });
        return;
      }
      log.info('config reloaded on SIGHUP: applying trunk VLAN lists', { trunks: [...(next.trunks?.keys() ?? [])] });
      void editTrunks(next, staticTrunkLookup(next), 'SIGHUP');
    };
    process.on('SIGHUP', onHup);
    log.info('agent started', { vtep: u.vtep, registry: conf.registry.type === 'file' ? conf.registry.path : 'kubernetes', pid: process.pid, metrics: conf.agent.metricsAddress, ...conf.agent });
    process.stderr.write(`podlegs agent: running (pid ${process.pid}, vtep ${u.vtep}, metrics http://${conf.agent.metricsAddress}/metrics, CNI ${conf.agent.socket})\n`);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    process.off('SIGHUP', onHup);
    // Calls in flight finish; new ones run in-process (no socket) until an agent is back.
    await cni.close();
    await edits;
    // The kernel keeps every entry: a restarted agent diffs against it, traffic never stops.
    clearInterval(guardTimer);
    await guards.poll().catch(() => undefined);
    guardKernel.close();
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
