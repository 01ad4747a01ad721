// Attaching a set of legs to one attachment, all of them or none: ADD's first set, and one
// more leg on a running attachment (hot-plug in Kubernetes mode, `podlegs attach`). The state
// file stays the single record DEL reads: the new legs go into it, marked pending, before the
// first kernel change; they are committed, or torn down again and dropped from it.
import { monotonicMs } from '../../overlay/clock';
import { Kernel, LinkInfo } from '../../overlay/kernel/kernel';
import { netnsId } from '../../overlay/kernel/netns';
import { ensureSegment } from '../../overlay/segment';
import { createAccessLeg, configurePodSide } from '../../overlay/access-leg';
import { inProcessWriter, NodeWriter } from '../../overlay/agent/node-writer';
import { hostVethName } from '../../overlay/names';
import { MtuLimit, Underlay } from '../../overlay/underlay';
import { AttachmentState, LegState, writeState } from './state';
import type { LegConf, PluginConf } from './config';
import { CniEnv, parseCniArgs } from './env';
import type { Log } from '../log';
import { CniError, Code, invalidConfig } from './errors';
import { execIpam, ipamContext } from './ipam';
import { fileRegistry, memberOwner, teardown } from './teardown';
import { ResultIp, ResultRoute } from './versions';
import { legMtu } from './mtu';
import { attachTrunkLeg, legVnis, planTrunkLeg, preflightTrunks } from './trunk';
import { guardAccessLeg, guardOf } from './guard';

/**
 * The runtime's view of a running attachment as its ADD recorded it: a later attach hands its
 * IPAM plugins that ADD's CNI_PATH and CNI_ARGS (host-local keys on container + interface).
 */
export function sandboxEnv(s: AttachmentState): CniEnv {
  return {
    command: 'ADD', containerId: s.containerId, netns: s.netns, ifname: s.ifname, path: s.sandbox?.cniPath ?? [],
    args: parseCniArgs(s.sandbox?.cniArgs), environ: { PATH: process.env.PATH },
  };
}

/** Why a running attachment must not get another leg: its netns is gone or is another one now. */
export function staleSandbox(s: AttachmentState): string | undefined {
  if (!s.sandbox) return `attachment ${s.containerId} was made by a podlegs that did not record its netns identity: recreate the container to attach legs to it`;
  const id = netnsId(s.netns);
  if (id !== s.sandbox.netnsId) return `network namespace ${s.netns} of ${s.containerId} ${id ? 'is now another namespace' : 'is gone'}; nothing is attached to a stale sandbox`;
  return undefined;
}

export interface LegSetContext {
  node: Kernel; pod: Kernel; conf: PluginConf; env: CniEnv; u: Underlay; log: Log;
  /** The node's links, dumped under the node lock (ADD's one dump): looked up instead of asking the kernel per name. */
  links?: LinkInfo[];
  /** Who writes node-wide state (FDB, segment removal); this process when not given. */
  writer?: NodeWriter;
}

/** What the attached legs got: addresses per leg (result shape), the routes IPAM returned, where the time went. */
export interface AttachedLegs { ips: Map<string, ResultIp[]>; routes: ResultRoute[]; ms: { legsMs: number; fdbMs: number } }

/** One configured leg → its recorded plan (host names, MTU, IPAM context). */
export function planLeg(conf: PluginConf, env: CniEnv, l: LegConf, limit: MtuLimit): LegState {
  if (l.trunk) return planTrunkLeg(conf, env, l, limit);
  const net = conf.networks.get(l.network);
  if (!net) throw invalidConfig(`leg ${l.interface}: network ${l.network} is not defined`);
  return {
    network: net.name, vni: net.vni, ifname: l.interface, hostIf: hostVethName(env.containerId, env.ifname, l.interface),
    mtu: legMtu(`network ${net.name}`, net.mtu, limit), ips: l.ips ?? [],
    ...(l.mac ? { mac: l.mac } : {}),
    ...guardOf(l, net),
    ...(!l.ips && net.ipam ? { ipam: net.ipam, ipamContext: ipamContext(net, l, env.args) } : {}),
  };
}

/** Before anything changes: the legs' names are free in the pod and on the node (code 101 otherwise). */
export async function preflightLegs(c: Pick<LegSetContext, 'node' | 'pod' | 'env' | 'links'>, legs: LegState[]): Promise<void> {
  const inPod = new Set((await c.pod.links()).map((l) => l.name)); // one dump: a pod has few links
  for (const leg of legs) {
    if (inPod.has(leg.ifname)) throw new CniError(Code.InterfaceExists, `interface ${leg.ifname} already exists in the pod's netns ${c.env.netns}`);
    if (c.links ? c.links.some((l) => l.name === leg.hostIf) : await c.node.linkByName(leg.hostIf)) throw new CniError(Code.InterfaceExists, `host interface ${leg.hostIf} for leg ${leg.ifname} already exists; a previous attachment was not deleted`);
  }
  await preflightTrunks(c.node, legs); // trunk legs: free names, and 8021q in the kernel
}

/**
 * Attaches `legs` to `state` (which may already hold committed legs). `commit` runs once every
 * new leg is up, still inside the all-or-nothing section (ADD publishes network-status there);
 * when anything fails, the new legs are torn down, the state is back to its old legs, and the
 * error is rethrown.
 */
export async function attachLegSet(c: LegSetContext, state: AttachmentState, legs: LegState[], commit?: (attached: AttachedLegs) => Promise<void>): Promise<AttachedLegs> {
  await preflightLegs(c, legs);
  return attachPreflighted(c, state, legs, commit);
}

/** attachLegSet once preflightLegs passed (ADD runs it first: a refusal there must leave an older state file alone). */
export async function attachPreflighted(c: LegSetContext, state: AttachmentState, legs: LegState[], commit?: (attached: AttachedLegs) => Promise<void>): Promise<AttachedLegs> {
  const { node, pod, conf, env, u, log, links } = c;
  const writer = c.writer ?? inProcessWriter;
  const before = state.legs;
  for (const l of legs) {
    l.pending = true;
    if (state.complete) l.late = true; // a running attachment: not part of ADD's result
  }
  state.legs = [...before, ...legs];
  const save = (): void => writeState(conf.stateDir, state);
  save();
  try {
    const registry = fileRegistry(state.registry);
    const attached: AttachedLegs = { ips: new Map(), routes: [], ms: { legsMs: 0, fdbMs: 0 } };
    const t0 = monotonicMs();
    const fresh = new Set<number>(); // VNIs whose segment this attach created or replaced
    for (const leg of legs) {
      if (leg.trunk) {
        for (const v of legVnis(leg)) fresh.add(v); // its segments may be new: converge them
        const t = await attachTrunkLeg({ node, pod, env, conf, u, registry, leg, save });
        attached.ips.set(leg.ifname, t.ips);
        attached.routes.push(...t.routes);
        continue;
      }
      const { segment, created, replaced } = await ensureSegment(node, leg.vni, u, conf.underlay.port, links);
      if (created || replaced) fresh.add(leg.vni);
      if (replaced) log.warn('replaced a VXLAN device that no longer matched this node', { vni: leg.vni, differed: replaced });
      const host = await createAccessLeg(node, env.netns, segment, leg);
      const alloc = leg.ipam && leg.ipamContext ? await execIpam('ADD', leg.ipam, leg.ipamContext, {
        cniVersion: conf.cniVersion, containerId: env.containerId, netns: env.netns, ifname: leg.ifname, cniPath: env.path, environ: env.environ,
      }) : undefined;
      if (alloc) leg.ips = (alloc.ips ?? []).map((ip) => ip.address);
      const legRoutes = alloc?.routes ?? [];
      if (legRoutes.some((r) => /^(0\.0\.0\.0|::)\/0$/.test(r.dst))) {
        throw invalidConfig(`IPAM of network ${leg.network} returned a default route; eth0 keeps the default route, remove it from the ipam "routes"`);
      }
      if (leg.guard) await guardAccessLeg(node, pod, host.index, leg); // before the pod side goes up
      const link = await configurePodSide(pod, leg.ifname, leg.ips, legRoutes);
      leg.mac = link.mac;
      registry?.register({ vni: leg.vni, vtep: u.vtep, mac: link.mac, owner: memberOwner(env.containerId, env.ifname, leg.ifname), network: leg.network });
      attached.ips.set(leg.ifname, (alloc?.ips ?? leg.ips.map((address): ResultIp => ({ address }))).map(({ interface: _i, ...ip }) => ip));
      attached.routes.push(...legRoutes);
    }
    const t1 = monotonicMs();
    // The FDB of the new legs' segments, by the node's one writer (the agent serving the call, or this process).
    if (legs.length) {
      const f = await writer.converge(node, { vnis: new Set(legs.flatMap(legVnis)), fresh, vtep: u.vtep, members: registry });
      if (f.problems.length) log.warn('FDB not fully written at attach (the agent repairs it)', { by: writer.by, problems: f.problems });
    }
    const round = (x: number): number => Math.round(x * 100) / 100;
    attached.ms = { legsMs: round(t1 - t0), fdbMs: round(monotonicMs() - t1) };
    await commit?.(attached);
    for (const l of legs) delete l.pending;
    // The plan (legs pending) written before the first kernel change is durable; should a crash
    // undo this rename, DEL and detach still find that plan and undo all of it (after a crash
    // the kernel objects are gone anyway). The content is fsynced: never a torn file.
    writeState(conf.stateDir, state, { durableRename: false });
    return attached;
  } catch (e) {
    log.warn('attaching legs failed, rolling back', { legs: legs.map((l) => l.ifname), error: (e as Error).message });
    await teardown(node, { ...state, legs }, env, log, writer).catch(() => undefined);
    state.legs = before;
    save();
    throw e;
  }
}

/**
 * Detaches the legs named `ifnames` (and any pending leg a dead attacher left) from a running
 * attachment: teardown from their recorded state, then the state keeps the rest. A teardown
 * that fails keeps the legs recorded, so a later detach or the runtime's DEL finishes the job.
 */
export async function detachLegSet(node: Kernel, state: AttachmentState, ifnames: string[], caller: Pick<CniEnv, 'path' | 'environ'>, stateDir: string, log: Log,
  writer: NodeWriter = inProcessWriter): Promise<LegState[]> {
  const doomed = state.legs.filter((l) => ifnames.includes(l.ifname) || l.pending);
  if (!doomed.length) return [];
  await teardown(node, { ...state, legs: doomed }, caller, log, writer);
  state.legs = state.legs.filter((l) => !doomed.includes(l));
  writeState(stateDir, state);
  return doomed;
}
