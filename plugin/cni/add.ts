// ADD: attach every leg, or nothing. The plan is recorded before the first
// kernel change; on any failure the recorded plan is torn down again.
import { Kernel } from '../../overlay/kernel/kernel';
import { ensureSegment } from '../../overlay/segment';
import { createAccessLeg, configurePodSide } from '../../overlay/access-leg';
import { FileRegistry } from '../../overlay/registry/file-registry';
import { desiredState } from '../../overlay/agent/desired';
import { applyFdb, planFdb, readSegments } from '../../overlay/agent/reconciler';
import { hostVethName } from '../../overlay/names';
import { legMtuLimit, MtuLimit } from '../../overlay/underlay';
import { AttachmentState, LegState, readState, removeState, writeState } from './state';
import { CmdContext } from './context';
import type { Log } from '../log';
import { CniError, Code, invalidConfig } from './errors';
import { execIpam, ipamContext } from './ipam';
import { fileRegistry, memberOwner, teardown } from './teardown';
import { nodeUnderlay, openPod } from './common';
import { Result, ResultIp, ResultRoute } from './versions';
import { appendLegs } from './result';
import { legMtu } from './mtu';
import { attachTrunkLeg, legVnis, planTrunkLeg, preflightTrunks } from './trunk';
import { forgetBgpPeer, recordBgpPeer } from './bgp-record';

/** Called once every leg is up, still inside the all-or-nothing section (e.g. writing network-status). */
export type Publish = (result: Result, state: AttachmentState) => Promise<void>;

export async function cmdAdd({ conf, env, log }: CmdContext, publish?: Publish): Promise<Result> {
  const pod = openPod(env.netns);
  const node = Kernel.open();
  try {
    // A pod that selects no podlegs network in Kubernetes mode: bgp-sync reads such pods from the
    // API, so nothing is recorded. A static `legs: []` entry (an NF that only peers BGP over eth0)
    // is recorded like any other: bgp-sync's static source reads pods from the state files.
    if (conf.legs.length === 0 && conf.mode !== 'static') {
      log.info('no legs selected: passing prevResult through');
      return conf.prevResult ?? {};
    }
    if (readState(conf.stateDir, env.containerId, env.ifname)?.complete) {
      throw new CniError(Code.InterfaceExists, `container ${env.containerId} interface ${env.ifname} already has podlegs legs; DEL it first`);
    }
    const u = await nodeUnderlay(node, conf);
    const state: AttachmentState = {
      containerId: env.containerId, ifname: env.ifname, netns: env.netns, network: conf.name,
      cniVersion: conf.cniVersion, vtep: u.vtep, registry: conf.registry, legs: planLegs(conf, env, legMtuLimit(u)),
      complete: false,
    };
    const inPod = new Set((await pod.links()).map((l) => l.name)); // one dump: a pod has few links
    for (const leg of state.legs) {
      if (inPod.has(leg.ifname)) throw new CniError(Code.InterfaceExists, `interface ${leg.ifname} already exists in the pod's netns ${env.netns}`);
      if (await node.linkByName(leg.hostIf)) throw new CniError(Code.InterfaceExists, `host interface ${leg.hostIf} for leg ${leg.ifname} already exists; a previous attachment was not deleted`);
    }
    await preflightTrunks(node, state.legs); // trunk legs: free names, and 8021q in the kernel
    writeState(conf.stateDir, state);
    try {
      const registry = fileRegistry(conf.registry);
      const ipsByLeg = new Map<string, ResultIp[]>();
      const routes: ResultRoute[] = [];
      for (const leg of state.legs) {
        if (leg.trunk) {
          const t = await attachTrunkLeg({ node, pod, env, conf, u, registry, leg, save: () => writeState(conf.stateDir, state) });
          ipsByLeg.set(leg.ifname, t.ips);
          routes.push(...t.routes);
          continue;
        }
        const { segment, replaced } = await ensureSegment(node, leg.vni, u, conf.underlay.port);
        if (replaced) log.warn('replaced a VXLAN device that no longer matched this node', { vni: leg.vni, differed: replaced });
        await createAccessLeg(node, env.netns, segment, leg);
        const alloc = leg.ipam && leg.ipamContext ? await execIpam('ADD', leg.ipam, leg.ipamContext, {
          cniVersion: conf.cniVersion, containerId: env.containerId, netns: env.netns, ifname: leg.ifname, cniPath: env.path, environ: env.environ,
        }) : undefined;
        if (alloc) leg.ips = (alloc.ips ?? []).map((ip) => ip.address);
        const legRoutes = alloc?.routes ?? [];
        if (legRoutes.some((r) => /^(0\.0\.0\.0|::)\/0$/.test(r.dst))) {
          throw invalidConfig(`IPAM of network ${leg.network} returned a default route; eth0 keeps the default route, remove it from the ipam "routes"`);
        }
        const link = await configurePodSide(pod, leg.ifname, leg.ips, legRoutes);
        leg.mac = link.mac;
        registry?.register({ vni: leg.vni, vtep: u.vtep, mac: link.mac, owner: memberOwner(env.containerId, env.ifname, leg.ifname), network: leg.network });
        ipsByLeg.set(leg.ifname, (alloc?.ips ?? leg.ips.map((address): ResultIp => ({ address }))).map(({ interface: _i, ...ip }) => ip));
        routes.push(...legRoutes);
      }
      if (registry && state.legs.length) await programFdb(node, registry, u.vtep, state.legs, log);
      const result = appendLegs(conf.prevResult, state.legs.map((l) => ({ ifname: l.ifname, mac: l.mac, mtu: l.mtu, ips: ipsByLeg.get(l.ifname) ?? [] })), routes, env.netns);
      await publish?.(result, state);
      recordBgpPeer(conf, env, state, log);
      state.complete = true;
      writeState(conf.stateDir, state);
      log.info('legs attached', { legs: state.legs.map((l) => ({ ifname: l.ifname, vni: l.vni, mac: l.mac, ips: l.ips })) });
      return result;
    } catch (e) {
      log.warn('ADD failed, rolling back', { error: (e as Error).message });
      await teardown(node, state, env, log).catch(() => undefined);
      forgetBgpPeer(conf.stateDir, state);
      removeState(conf.stateDir, env.containerId, env.ifname);
      throw e;
    }
  } finally {
    node.close();
    pod.close();
  }
}

function planLegs(conf: CmdContext['conf'], env: CmdContext['env'], limit: MtuLimit): LegState[] {
  return conf.legs.map((l) => {
    if (l.trunk) return planTrunkLeg(conf, env, l, limit);
    const net = conf.networks.get(l.network)!;
    return {
      network: net.name, vni: net.vni, ifname: l.interface, hostIf: hostVethName(env.containerId, env.ifname, l.interface),
      mtu: legMtu(`network ${net.name}`, net.mtu, limit), ips: l.ips ?? [],
      ...(l.mac ? { mac: l.mac } : {}),
      ...(!l.ips && net.ipam ? { ipam: net.ipam, ipamContext: ipamContext(net, l, env.args) } : {}),
    };
  });
}

/**
 * The FDB of this ADD's segments (flood list and remote-member MACs) from what the registry
 * knows right now, through the agent's own rule (desiredState + planFdb) and in one batch:
 * a node without an agent gets the same entries the agent would write. Refusals are the
 * agent's to repair; the ADD does not fail for them.
 */
async function programFdb(node: Kernel, registry: FileRegistry, vtep: string, legs: LegState[], log: Log): Promise<void> {
  const vnis = new Set(legs.flatMap(legVnis));
  const { members } = await registry.list(vnis);
  const actual = new Map([...(await readSegments(node))].filter(([vni]) => vnis.has(vni)));
  const want = desiredState(members, vtep, actual.keys());
  const refused = await applyFdb(node, planFdb(actual, want.segments));
  if (refused.length || want.problems.length) {
    log.warn('FDB entries not written at ADD (the agent repairs them)', {
      refused: refused.map((f) => `${f.change.op} ${f.change.mac} ${f.change.dst}: ${f.error.message}`), problems: want.problems,
    });
  }
}
