// Small helpers shared by the commands: opening the pod's netns and the underlay.
import { Kernel, LinkInfo } from '../../overlay/kernel/kernel';
import { isNotFound } from '../../overlay/kernel/errors';
import { Underlay, UnderlayError, resolveUnderlay } from '../../overlay/underlay';
import { CniError, Code } from './errors';
import type { PluginConf } from './config';

/** A kernel connection inside the pod's netns; a missing netns is "container unknown". */
export function openPod(netns: string): Kernel {
  try {
    return Kernel.open(netns);
  } catch (e) {
    if (isNotFound(e)) throw new CniError(Code.UnknownContainer, `network namespace ${netns} does not exist`);
    throw new CniError(Code.UnknownContainer, `cannot enter network namespace ${netns}: ${(e as Error).message}`);
  }
}

/** The underlay as configured; unusable means the plugin is not available (50). */
export async function nodeUnderlay(node: Kernel, conf: PluginConf, links?: LinkInfo[]): Promise<Underlay> {
  try {
    return await resolveUnderlay(node, conf.underlay, links);
  } catch (e) {
    if (e instanceof UnderlayError) throw new CniError(Code.NotAvailable, e.message);
    throw e;
  }
}
