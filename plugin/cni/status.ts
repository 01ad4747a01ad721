// STATUS: is this node able to attach legs right now?
import * as fs from 'fs';
import { Kernel } from '../../overlay/kernel/kernel';
import { CmdContext } from './context';
import { CniError, Code } from './errors';
import { nodeUnderlay } from './common';
import { requireTrunkSupport } from './trunk';

export async function cmdStatus({ conf }: CmdContext): Promise<void> {
  const node = Kernel.open();
  try {
    await nodeUnderlay(node, conf);
    // Trunk networks need 802.1Q devices and a tc BPF filter: probe both, leaving nothing behind.
    if (conf.trunks?.size) await requireTrunkSupport(node, { tc: true });
  } finally {
    node.close();
  }
  try {
    fs.mkdirSync(conf.registry.path, { recursive: true });
    fs.accessSync(conf.registry.path, fs.constants.W_OK);
  } catch (e) {
    throw new CniError(Code.NotAvailable, `registry ${conf.registry.path} is not writable: ${(e as Error).message}`);
  }
}
