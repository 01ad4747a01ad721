// The CNI side of the leg guard (security mode "enforce"): which guard a leg gets, putting it
// on at ADD, and what CHECK and STATUS verify. The program and the kernel side are overlay's
// (leg-guard.ts, leg-guard-kernel.ts).
import { Kernel } from '../../overlay/kernel/kernel';
import { GuardConf, GuardTooLarge, guardRules } from '../../overlay/leg-guard';
import { GuardUnsupported, guardProblems, hasIngressFilter, installGuard, probeGuardSupport } from '../../overlay/leg-guard-kernel';
import type { LegConf, NetworkConf, PluginConf } from './config';
import { effectiveGuard } from './security-config';
import { CniError, Code, invalidConfig } from './errors';
import type { LegState } from './state';

/** `{guard}` for a leg's state when its security (the leg's, else the network's) enforces; else {}. */
export function guardOf(l: Pick<LegConf, 'security'>, net: Pick<NetworkConf, 'security'>): { guard?: GuardConf } {
  const g = effectiveGuard(l.security, net.security);
  return g ? { guard: g } : {};
}

export const guardNotAvailable = (e: GuardUnsupported): CniError =>
  new CniError(Code.NotAvailable, e.message, 'load the missing modules (modprobe sch_ingress cls_bpf) or use a kernel built with them; legs with security mode "off" work without them');

async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof GuardUnsupported) throw guardNotAvailable(e);
    if (e instanceof GuardTooLarge) throw invalidConfig(e.message);
    throw e;
  }
}

/** The leg's own MAC: the pod side's, read once it exists (the kernel picks it unless configured). */
async function podMac(pod: Kernel, ifname: string): Promise<string> {
  const l = await pod.linkByName(ifname);
  if (!l) throw new Error(`leg ${ifname} did not appear in the pod`);
  return l.mac;
}

/** Guards an access leg's host side; its addresses are known (IPAM ran), the pod side is still down. */
export async function guardAccessLeg(node: Kernel, pod: Kernel, hostIndex: number, leg: LegState): Promise<void> {
  const mac = await podMac(pod, leg.ifname);
  await mapped(() => installGuard(node, hostIndex, guardRules({ mac, ips: leg.ips }, leg.guard!)));
}

/**
 * Guards each VLAN of a trunk on its sub-interface (frames reach it untagged, after the
 * trunk's VLAN filter). The pod's addresses on its VLAN interfaces are its own business, not
 * podlegs': only the VIPs and allowedAddresses are known, so those must list them.
 */
export async function guardTrunkVlans(node: Kernel, pod: Kernel, leg: LegState): Promise<void> {
  const vlans = leg.trunk!.vlans.filter((v) => v.guard);
  if (!vlans.length) return;
  const mac = await podMac(pod, leg.ifname);
  for (const v of vlans) {
    const sub = await node.linkByName(v.hostIf);
    if (!sub) throw new Error(`VLAN ${v.vid} sub-interface ${v.hostIf} is missing`);
    await mapped(() => installGuard(node, sub.index, guardRules({ mac, ips: [] }, v.guard!)));
  }
}

const sameGuard = (a?: GuardConf, b?: GuardConf): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * CHECK: the guard on a device is the one the state records (none when off), and the
 * configuration still asks for it (`configured` null: this configuration does not describe
 * the leg, e.g. Kubernetes mode, whose legs come from the pod).
 */
export async function guardCheck(node: Kernel, dev: { index: number; name: string }, own: { mac: string; ips: string[] }, recorded: GuardConf | undefined, configured?: GuardConf | null): Promise<string[]> {
  const out: string[] = [];
  if (configured !== null && !sameGuard(configured, recorded)) {
    out.push(`security is ${recorded ? '"enforce"' : '"off"'} with ${JSON.stringify(recorded ?? {})} since ADD, the configuration now says ${configured ? `"enforce" with ${JSON.stringify(configured)}` : '"off"'}`);
  }
  if (recorded) out.push(...await guardProblems(node, dev.index, dev.name, guardRules(own, recorded)));
  else if (await hasIngressFilter(node, dev.index)) out.push(`${dev.name} has a tc ingress filter although the leg's security is "off"`);
  return out;
}

/** STATUS: when any network, leg or override may enforce, the kernel must be able to run the guard. */
export async function requireGuardSupport(node: Kernel, conf: PluginConf): Promise<void> {
  const enforced = [...conf.networks.values()].some((n) => n.security?.mode === 'enforce') || conf.legs.some((l) => l.security?.mode === 'enforce');
  if (!enforced) return; // Kubernetes mode: NADs are read at ADD, which reports a missing feature itself
  await mapped(() => probeGuardSupport(node));
}

/** What the CHECK configuration asks of one network's guard on this leg; null when it does not describe the leg. */
export function configuredGuard(conf: PluginConf | undefined, legIfname: string, network: string): GuardConf | undefined | null {
  const l = conf?.legs.find((x) => x.interface === legIfname);
  const net = conf?.networks.get(network);
  if (!l || !net) return null;
  return guardOf(l, net).guard;
}
