// ADD: attach every leg, or nothing. The plan is recorded before the first
// kernel change; on any failure the recorded plan is torn down again
// (plugin/cni/leg-set.ts, shared with hot-plug and `podlegs attach`).
import { monotonicMs } from '../../overlay/clock';
import { Kernel } from '../../overlay/kernel/kernel';
import { netnsId } from '../../overlay/kernel/netns';
import { legMtuLimit } from '../../overlay/underlay';
import { AttachmentState, readState, removeState } from './state';
import { CmdContext } from './context';
import { CniError, Code } from './errors';
import { formatCniArgs } from './ipam';
import { nodeUnderlay, openPod } from './common';
import { Result } from './versions';
import { appendLegs } from './result';
import { attachPreflighted, planLeg, preflightLegs } from './leg-set';
import { forgetBgpPeer, recordBgpPeer } from './bgp-record';

/** Called once every leg is up, still inside the all-or-nothing section (e.g. writing network-status). */
export type Publish = (result: Result, state: AttachmentState) => Promise<void>;

/** lockMs: how long the caller waited for the node lock (logged with the phases below). */
export async function cmdAdd({ conf, env, log, writer }: CmdContext, publish?: Publish, lockMs = 0): Promise<Result> {
  // Where an ADD's time goes, logged with its result: checks, legs (segments, veths, IPAM, pod side), FDB, the rest.
  const ms: Record<string, number> = { lockMs: Math.round(lockMs * 100) / 100 };
  let mark = monotonicMs();
  const lap = (phase: string): void => { const t = monotonicMs(); ms[phase] = Math.round((t - mark) * 100) / 100; mark = t; };
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
    // One dump of the node's links for the lookups of this ADD (underlay, free names, existing
    // segments): under the node lock nobody else adds or removes podlegs' devices meanwhile.
    const links = await node.links();
    const u = await nodeUnderlay(node, conf, links);
    const limit = legMtuLimit(u);
    const legs = conf.legs.map((l) => planLeg(conf, env, l, limit));
    const state: AttachmentState = {
      containerId: env.containerId, ifname: env.ifname, netns: env.netns, network: conf.name,
      cniVersion: conf.cniVersion, vtep: u.vtep, port: conf.underlay.port, registry: conf.registry, legs: [], complete: false,
      sandbox: { netnsId: netnsId(env.netns) ?? '', cniPath: env.path, cniArgs: formatCniArgs(env.args) },
    };
    const c = { node, pod, conf, env, u, log, links, writer };
    await preflightLegs(c, legs);
    lap('checksMs');
    let result: Result = {};
    try {
      const attached = await attachPreflighted(c, state, legs, async (attached) => {
        result = appendLegs(conf.prevResult, state.legs.map((l) => ({ ifname: l.ifname, mac: l.mac, mtu: l.mtu, ips: attached.ips.get(l.ifname) ?? [] })), attached.routes, env.netns);
        await publish?.(result, state);
        recordBgpPeer(conf, env, state, log);
        state.complete = true;
      });
      // The attach's own phases (legs, FDB) come back with it; the rest of it is the finish.
      lap('finishMs');
      Object.assign(ms, attached.ms, { finishMs: Math.round((ms.finishMs - attached.ms.legsMs - attached.ms.fdbMs) * 100) / 100 });
    } catch (e) {
      forgetBgpPeer(conf.stateDir, state);
      removeState(conf.stateDir, env.containerId, env.ifname);
      throw e;
    }
    // attachPreflighted saved the state as committed (complete, no leg pending).
    log.info('legs attached', { legs: state.legs.map((l) => ({ ifname: l.ifname, vni: l.vni, mac: l.mac, ips: l.ips })), fdbBy: writer.by, ...ms });
    return result;
  } finally {
    node.close();
    pod.close();
  }
}
