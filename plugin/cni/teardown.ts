// Undoing an attachment from its recorded state: used by DEL, by GC, and by a
// failed ADD (whose state lists what it planned). Every step tolerates "already gone".
import { Kernel } from '../../overlay/kernel/kernel';
import { removeLegsAndEmptySegments } from '../../overlay/segment';
import type { NodeWriter } from '../../overlay/agent/node-writer';
import { FileRegistry } from '../../overlay/registry/file-registry';
import { AttachmentState } from './state';
import type { RegistryConf } from './config';
import { releaseIpam } from './ipam';
import type { Log } from '../log';
import type { CniEnv } from './env';
import { legVnis, teardownTrunkLeg, trunkHostLinks } from './trunk';

/** The file registry to (un)register legs in; none in Kubernetes mode (network-status carries membership). */
export const fileRegistry = (r: RegistryConf): FileRegistry | undefined => (r.type === 'file' ? new FileRegistry(r.path) : undefined);

export const memberOwner = (containerId: string, attachIfname: string, legIfname: string): string =>
  `${containerId}/${attachIfname}/${legIfname}`;

/**
 * The legs' veths (and a trunk's VLAN devices) go in one kernel batch; the segments they leave
 * without legs follow the one segment-removal rule with the writer's grace: at once in-process,
 * after the agent's grace period when the agent serves the call.
 */
export async function teardown(node: Kernel, s: AttachmentState, caller: Pick<CniEnv, 'path' | 'environ'>, log: Log, writer: NodeWriter): Promise<void> {
  const registry = fileRegistry(s.registry);
  const errors: string[] = [];
  for (const leg of [...s.legs].reverse()) {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${leg.ifname}: ${what}: ${(e as Error).message}`);
      }
    };
    if (leg.trunk) {
      await teardownTrunkLeg(s, leg, registry, caller, step);
      continue;
    }
    await step('unregister', () => registry?.unregister({ vni: leg.vni, vtep: s.vtep, owner: memberOwner(s.containerId, s.ifname, leg.ifname) }));
    if (leg.ipam) {
      const ipam = leg.ipam;
      await step('release addresses', () => releaseIpam(ipam, leg.ipamContext, leg.network, s, leg.ifname, caller));
    }
  }
  const hostIfs = s.legs.flatMap((l) => (l.trunk ? trunkHostLinks(l) : [l.hostIf]));
  const vnis = s.legs.flatMap(legVnis);
  try {
    writer.legsRemoved(await removeLegsAndEmptySegments(node, { hostIfs, vnis, owner: { local: s.vtep, port: s.port }, grace: writer.grace() }));
  } catch (e) {
    errors.push(`remove legs and empty segments: ${(e as Error).message}`);
  }
  if (errors.length) {
    log.warn('teardown incomplete', { errors });
    throw new Error(`could not undo every leg: ${errors.join('; ')}`);
  }
}
