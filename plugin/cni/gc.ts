// GC: remove every attachment of this network that the runtime no longer
// lists in cni.dev/valid-attachments, plus segments left without legs.
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { isProbeName, vniOfSegmentName } from '../../overlay/names';
import { removeSegmentIfUnused } from '../../overlay/segment';
import { listStates, removeState } from './state';
import { CmdContext } from './context';
import { teardown } from './teardown';
import { forgetBgpPeer } from './bgp-record';

export async function cmdGc({ conf, env, log }: CmdContext): Promise<void> {
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}/${a.ifname}`));
  await withNodeLock(conf.stateDir, async () => {
    const node = Kernel.open();
    try {
      const { states, broken } = listStates(conf.stateDir);
      if (broken.length) log.warn('unreadable state files left alone', { files: broken });
      for (const s of states) {
        if (s.network !== conf.name || valid.has(`${s.containerId}/${s.ifname}`)) continue;
        await teardown(node, s, env, log);
        forgetBgpPeer(conf.stateDir, s);
        removeState(conf.stateDir, s.containerId, s.ifname);
        log.info('garbage-collected attachment', { containerId: s.containerId, ifname: s.ifname });
      }
      for (const l of await node.links()) {
        // A trunk capability probe (STATUS) that was killed before it could delete its veth.
        if (isProbeName(l.name) && l.kind === 'veth' && (await node.deleteLink(l.index))) { log.info('removed probe leftover', { link: l.name }); continue; }
        const vni = l.kind === 'bridge' ? vniOfSegmentName(l.name) : undefined;
        if (vni !== undefined && (await removeSegmentIfUnused(node, vni))) log.info('removed empty segment', { vni });
      }
    } finally {
      node.close();
    }
  });
}
