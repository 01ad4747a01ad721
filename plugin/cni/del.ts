// DEL: idempotent, from the recorded state only (no netns, NAD or API needed), so the
// configuration it is called with only has to say where that state is (loadTeardownConf).
import { monotonicMs } from '../../overlay/clock';
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { readState, removeState } from './state';
import type { CniEnv } from './env';
import type { TeardownConf } from './config';
import type { Log } from '../log';
import { teardown } from './teardown';
import { forgetBgpPeer } from './bgp-record';
import type { NodeWriter } from '../../overlay/agent/node-writer';

export async function cmdDel({ conf, env, log, writer }: { conf: TeardownConf; env: CniEnv; log: Log; writer: NodeWriter }): Promise<void> {
  if (!readState(conf.stateDir, env.containerId, env.ifname)) {
    // An ADD killed while writing its first state left at most that file's temp file: gone too.
    removeState(conf.stateDir, env.containerId, env.ifname);
    log.debug('nothing recorded for this attachment');
    return;
  }
  // Where a DEL's time goes, logged with it: waiting for the node lock, the teardown, the files after it.
  const t0 = monotonicMs();
  let locked = t0;
  let tornDown = t0;
  // Read again under the lock: a hot-plug (or `podlegs attach`) may have added a leg meanwhile.
  const state = await withNodeLock(conf.stateDir, async () => {
    locked = monotonicMs();
    const s = readState(conf.stateDir, env.containerId, env.ifname);
    if (!s) return undefined;
    const node = Kernel.open();
    try {
      await teardown(node, s, env, log, writer);
    } finally {
      node.close();
    }
    tornDown = monotonicMs();
    forgetBgpPeer(conf.stateDir, s);
    removeState(conf.stateDir, env.containerId, env.ifname);
    return s;
  });
  if (!state) return;
  const ms = (a: number, b: number): number => Math.round((b - a) * 100) / 100;
  log.info('legs detached', { legs: state.legs.map((l) => l.ifname), segmentsBy: writer.by,
    lockMs: ms(t0, locked), teardownMs: ms(locked, tornDown), finishMs: ms(tornDown, monotonicMs()) });
}
