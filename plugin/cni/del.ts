// DEL: idempotent, from the recorded state only (no netns, NAD or API needed), so the
// configuration it is called with only has to say where that state is (loadTeardownConf).
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { readState, removeState } from './state';
import type { CniEnv } from './env';
import type { TeardownConf } from './config';
import type { Log } from '../log';
import { teardown } from './teardown';
import { forgetBgpPeer } from './bgp-record';

export async function cmdDel({ conf, env, log }: { conf: TeardownConf; env: CniEnv; log: Log }): Promise<void> {
  const state = readState(conf.stateDir, env.containerId, env.ifname);
  if (!state) {
    // An ADD killed while writing its first state left at most that file's temp file: gone too.
    removeState(conf.stateDir, env.containerId, env.ifname);
    log.debug('nothing recorded for this attachment');
    return;
  }
  await withNodeLock(conf.stateDir, async () => {
    const node = Kernel.open();
    try {
      await teardown(node, state, env, log);
    } finally {
      node.close();
    }
  });
  forgetBgpPeer(conf.stateDir, state);
  removeState(conf.stateDir, env.containerId, env.ifname);
  log.info('legs detached', { legs: state.legs.map((l) => l.ifname) });
}
