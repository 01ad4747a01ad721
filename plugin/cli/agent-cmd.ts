// `podlegs agent`: runs in the node's netns until SIGTERM/SIGINT.
import { Kernel } from '../../overlay/kernel/kernel';
import { resolveUnderlay } from '../../overlay/underlay';
import { FileRegistry } from '../../overlay/registry/file-registry';
import { Agent } from '../../overlay/agent/agent';
import { createLog } from '../log';
import type { PluginConf } from '../cni/config';

export async function runAgent(conf: PluginConf): Promise<number> {
  const log = createLog(conf.log, { component: 'agent', node: process.env.NODE_NAME }, !conf.log.file);
  const k = Kernel.open();
  const u = await resolveUnderlay(k, conf.underlay);
  const agent = new Agent(k, new FileRegistry(conf.registry.path), {
    localVtep: u.vtep, resyncMs: Number(process.env.PODLEGS_RESYNC_MS ?? 10_000), debounceMs: 10, log,
  });
  log.info('agent started', { vtep: u.vtep, registry: conf.registry.path, pid: process.pid });
  agent.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  agent.stop();
  k.close();
  log.info('agent stopped');
  return 0;
}
