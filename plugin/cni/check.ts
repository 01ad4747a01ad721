// CHECK: every recorded leg is still as ADD left it.
import { Kernel } from '../../overlay/kernel/kernel';
import { bridgeName, vxlanName } from '../../overlay/names';
import { readState } from './state';
import { CmdContext } from './context';
import { CniError, Code, invalidConfig } from './errors';
import { openPod } from './common';
import { trunkLegProblems } from './trunk';
import { configuredGuard, guardCheck } from './guard';

export async function cmdCheck({ conf, env }: CmdContext): Promise<void> {
  // The spec has the runtime pass ADD's result on CHECK; libcni-based plugins refuse a CHECK without it.
  const prevResult = conf.prevResult;
  if (!prevResult) throw invalidConfig('CHECK needs prevResult (the result the runtime recorded from ADD); the configuration has none');
  const state = readState(conf.stateDir, env.containerId, env.ifname);
  if (!state?.complete) {
    if (conf.legs.length === 0) return;
    throw new CniError(Code.CheckFailed, `no podlegs attachment is recorded for container ${env.containerId} interface ${env.ifname}`);
  }
  const fail = (msg: string): never => { throw new CniError(Code.CheckFailed, msg); };
  const pod = openPod(env.netns);
  const node = Kernel.open();
  try {
    const podAddrs = await pod.addresses();
    for (const leg of state.legs) {
      const l = await pod.linkByName(leg.ifname);
      if (!l) fail(`leg ${leg.ifname} is missing from the pod`);
      if (l!.mac !== leg.mac) fail(`leg ${leg.ifname} has MAC ${l!.mac}, expected ${leg.mac}`);
      if (l!.mtu !== leg.mtu) fail(`leg ${leg.ifname} has MTU ${l!.mtu}, expected ${leg.mtu}`);
      if (!l!.up) fail(`leg ${leg.ifname} is down`);
      for (const cidr of leg.ips) {
        const [ip, len] = cidr.split('/');
        if (!podAddrs.some((a) => a.index === l!.index && a.address === ip && a.prefixLen === Number(len))) fail(`leg ${leg.ifname} lost address ${cidr}`);
      }
      // A leg attached later (hot-plug, `podlegs attach`) is not in ADD's result, which is what the runtime passes.
      const prev = prevResult.interfaces?.find((i) => i.name === leg.ifname && i.sandbox === env.netns);
      if (!prev && !leg.late) fail(`prevResult does not list leg ${leg.ifname}`);
      if (prev?.mac && prev.mac !== leg.mac) fail(`prevResult lists MAC ${prev.mac} for leg ${leg.ifname}, the pod has ${leg.mac}`);
      if (leg.trunk) {
        const problems = await trunkLegProblems(node, leg, conf);
        if (problems.length) fail(`trunk leg ${leg.ifname}: ${problems.join('; ')}`);
        continue;
      }
      const [host, br, vx] = await Promise.all([node.linkByName(leg.hostIf), node.linkByName(bridgeName(leg.vni)), node.linkByName(vxlanName(leg.vni))]);
      if (!br || !vx) fail(`segment of VNI ${leg.vni} (network ${leg.network}) is missing on this node`);
      if (vx!.vxlan?.vni !== leg.vni || vx!.master !== br!.index) fail(`VXLAN device ${vx!.name} is not VNI ${leg.vni} on bridge ${br!.name}`);
      if (!host) fail(`host side ${leg.hostIf} of leg ${leg.ifname} is missing`);
      if (host!.master !== br!.index) fail(`host side ${leg.hostIf} of leg ${leg.ifname} is not enslaved to ${br!.name}`);
      const guard = await guardCheck(node, host!, { mac: leg.mac ?? '', ips: leg.ips }, leg.guard, configuredGuard(conf, leg.ifname, leg.network));
      if (guard.length) fail(`leg ${leg.ifname}: ${guard.join('; ')}`);
    }
  } finally {
    pod.close();
    node.close();
  }
}
