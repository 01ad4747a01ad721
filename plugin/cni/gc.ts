// GC: remove every attachment of this network that the runtime no longer
// lists in cni.dev/valid-attachments, plus segments left without legs (the one removal rule,
// with the writer's grace: at once in-process, the agent's grace period when it serves GC).
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { isProbeName } from '../../overlay/names';
import { removeLegsAndEmptySegments } from '../../overlay/segment';
import { resolveUnderlay } from '../../overlay/underlay';
import { listStates, removeState } from './state';
import { CmdContext } from './context';
import { teardown } from './teardown';
import { forgetBgpPeer } from './bgp-record';

export async function cmdGc({ conf, env, log, writer }: CmdContext): Promise<void> {
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}/${a.ifname}`));
  await withNodeLock(conf.stateDir, async () => {
    const node = Kernel.open();
    try {
      const { states, broken } = listStates(conf.stateDir);
      if (broken.length) log.warn('unreadable state files left alone', { files: broken });
      for (const s of states) {
        if (s.network !== conf.name || valid.has(`${s.containerId}/${s.ifname}`)) continue;
        await teardown(node, s, env, log, writer);
        forgetBgpPeer(conf.stateDir, s);
        removeState(conf.stateDir, s.containerId, s.ifname);
        log.info('garbage-collected attachment', { containerId: s.containerId, ifname: s.ifname });
      }
      const links = await node.links();
      for (const l of links) {
        // A trunk capability probe (STATUS) that was killed before it could delete its veth.
        if (isProbeName(l.name) && l.kind === 'veth' && (await node.deleteLink(l.index))) log.info('removed probe leftover', { link: l.name });
      }
      // Segments of this node: the underlay's address and the configured port.
      const local = await resolveUnderlay(node, conf.underlay).then((u) => u.vtep, (e: Error) => {
        log.warn('underlay unusable: empty segments left for a later GC', { error: e.message });
        return undefined;
      });
      if (local !== undefined) {
        const r = await removeLegsAndEmptySegments(node, { hostIfs: [], owner: { local, port: conf.underlay.port }, grace: writer.grace() });
        for (const vni of r.removed) log.info('removed empty segment', { vni });
        writer.legsRemoved(r);
      }
    } finally {
      node.close();
    }
  });
}
