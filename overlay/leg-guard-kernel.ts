// The leg guard in the kernel: install it on a host-side device's tc ingress, verify it (CHECK,
// status), probe that the kernel can run it (STATUS). The program itself is leg-guard.ts.
import { Kernel } from './kernel/kernel';
import { KernelError } from './kernel/errors';
import { probeName } from './names';
import { GuardRules, guardProgram, isGuardFor } from './leg-guard';
import { TRUNK_FEATURES } from './trunk-leg';

export type GuardFeature = 'clsact' | 'bpf';

/** The kernel lacks what the guard needs (security mode "enforce"). */
export class GuardUnsupported extends Error {
  constructor(readonly feature: GuardFeature, cause?: unknown) {
    super(`this node's kernel lacks what the leg guard (security.mode "enforce") needs: ${TRUNK_FEATURES[feature]}`, { cause });
    this.name = 'GuardUnsupported';
  }
}

const unsupported = (e: unknown): boolean => e instanceof KernelError && e.is('EOPNOTSUPP', 'ENOENT', 'EPROTONOSUPPORT');

async function needs<T>(feature: GuardFeature, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (unsupported(e)) throw new GuardUnsupported(feature, e);
    throw e;
  }
}

/**
 * Puts the guard on the device's ingress (frames the pod sends). Called while the pod side is
 * still down, so no frame passes unguarded.
 */
export async function installGuard(node: Kernel, index: number, rules: GuardRules): Promise<void> {
  const prog = guardProgram(rules);
  await needs('clsact', () => node.addClsact(index));
  await needs('bpf', () => node.addIngressBpf(index, prog));
}

/** What is wrong with the guard on a device, in words; [] when it is exactly the one for rules. */
export async function guardProblems(node: Kernel, index: number, name: string, rules: GuardRules): Promise<string[]> {
  const filters = await node.ingressBpf(index);
  if (filters.length === 0) return [`the leg guard on ${name} (tc ingress) is missing`];
  if (filters.length > 1) return [`${name} has ${filters.length} ingress filters; the leg guard should be the only one`];
  if (!filters[0].directAction || !isGuardFor(filters[0].prog, rules)) return [`the leg guard on ${name} is not the one for this leg's MAC, addresses and security settings`];
  return [];
}

/** Whether there is an ingress filter on the device at all (a leg configured "off" has none). */
export async function hasIngressFilter(node: Kernel, index: number): Promise<boolean> {
  return (await node.ingressBpf(index)).length > 0;
}

/** STATUS: can this kernel run the guard? A throw-away veth pair gets it, and is deleted. */
export async function probeGuardSupport(k: Kernel): Promise<void> {
  const a = probeName();
  const veth = await k.createVeth(a, `${a}p`, k.netns ?? '/proc/thread-self/ns/net', { mtu: 1500 });
  try {
    await installGuard(k, veth.index, { macs: ['02:00:00:00:00:01'], addresses: ['192.0.2.1/32'] });
  } finally {
    await k.deleteLink(veth.index);
  }
}
