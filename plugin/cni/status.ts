// STATUS: is this node able to attach legs right now? What ADD needs and a node can lose:
// the underlay and its VTEP, trunk support when trunks are configured, and where membership
// goes — the file registry's directory, or in Kubernetes mode the kubeconfig. The API server
// itself is not called: runtimes ask often, and an API outage is reported by ADD (code 11).
import * as fs from 'fs';
import { Kernel } from '../../overlay/kernel/kernel';
import { NeedsClientNode, readKubeconfig } from '../../overlay/kube/kubeconfig';
import { CmdContext } from './context';
import { CniError, Code } from './errors';
import { nodeUnderlay } from './common';
import { requireTrunkSupport } from './trunk';
import { requireGuardSupport } from './guard';

export async function cmdStatus({ conf }: CmdContext): Promise<void> {
  const node = Kernel.open();
  try {
    await nodeUnderlay(node, conf);
    // Trunk networks need 802.1Q devices and a tc BPF filter: probe both, leaving nothing behind.
    if (conf.trunks?.size) await requireTrunkSupport(node, { tc: true });
    await requireGuardSupport(node, conf); // security "enforce": the clsact qdisc and cBPF filter

  } finally {
    node.close();
  }
  if (conf.registry.type === 'file') requireWritableDir(conf.registry.path);
  if (conf.mode === 'kubernetes') requireKubeconfig(conf.kubernetes!.kubeconfig);
}

function requireWritableDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new CniError(Code.NotAvailable, `registry ${dir} is not writable: ${(e as Error).message}`);
  }
}

/** The kubeconfig ADD will use: present, parsable, its credential files readable. */
function requireKubeconfig(file: string): void {
  try {
    readKubeconfig(file);
  } catch (e) {
    if (e instanceof NeedsClientNode) return; // exec/auth-provider: checked by ADD, too costly here
    throw new CniError(Code.NotAvailable, `kubeconfig ${file} is not usable: ${(e as Error).message}`);
  }
}
