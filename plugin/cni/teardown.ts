// Undoing an attachment from its recorded state: used by DEL, by GC, and by a
// failed ADD (whose state lists what it planned). Every step tolerates "already gone".
import { Kernel } from '../../overlay/kernel/kernel';
import { removeLegsAndEmptySegments } from '../../overlay/segment';
import { FileRegistry } from '../../overlay/registry/file-registry';
import { AttachmentState } from './state';
import type { RegistryConf } from './config';
import { releaseIpam } from './ipam';
import type { Log } from '../log';
import type { CniEnv } from './env';
import { teardownTrunkLeg } from './trunk';

/** The file registry to (un)register legs in; none in Kubernetes mode (network-status carries membership). */
export const fileRegistry = (r: RegistryConf): FileRegistry | undefined => (r.type === 'file' ? new FileRegistry(r.path) : undefined);

export const memberOwner = (containerId: string, attachIfname: string, legIfname: string): string =>
  `${containerId}/${attachIfname}/${legIfname}`;

export async function teardown(node: Kernel, s: AttachmentState, caller: Pick<CniEnv, 'path' | 'environ'>, log: Log): Promise<void> {
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
      await teardownTrunkLeg(node, s, leg, registry, caller, step);
      continue;
    }
    await step('unregister', () => registry?.unregister({ vni: leg.vni, vtep: s.vtep, owner: memberOwner(s.containerId, s.ifname, leg.ifname) }));
    if (leg.ipam) {
      const ipam = leg.ipam;
      await step('release addresses', () => releaseIpam(ipam, leg.ipamContext, leg.network, s, leg.ifname, caller));
    }
  }
  // The access legs' veths and the segments they leave empty go in one kernel batch.
  const access = s.legs.filter((l) => !l.trunk);
  try {
    await removeLegsAndEmptySegments(node, access.map((l) => l.hostIf), access.map((l) => l.vni));
  } catch (e) {
    errors.push(`remove legs and empty segments: ${(e as Error).message}`);
  }
  if (errors.length) {
    log.warn('teardown incomplete', { errors });
    throw new Error(`could not undo every leg: ${errors.join('; ')}`);
  }
}
