// `podlegs bgp-sync --config FILE [--once [--dry-run]] [--render]`
//   (default)  keep the node speaker's pod neighbors and prefix guard in step until SIGTERM/SIGINT
//   --once     one pass, print what was done, exit (with --dry-run: what would be done, nothing applied)
//   --render   print the Cilium resources for the current pods as YAML, touch nothing
// A config that does not validate is reported and nothing is applied.
import { kubernetesPodClient } from '../k8s/pod-client';
import { readConfigObject } from './node-config';
import * as os from 'os';
import { loadConf, PluginConf } from '../cni/config';
import { CniError } from '../cni/errors';
import { BgpSyncConf, missingClusterCidrs, parseBgpSyncConf, withClusterCidrs } from '../bgp/config';
import { deriveClusterCidrs } from '../bgp/cluster-cidrs';
import { KubeClient } from '../../overlay/kube/http';
import { loadApiTarget } from '../../overlay/kube/kubeconfig';
import { computeDesired } from '../bgp/desired';
import { GobgpSpeaker } from '../bgp/gobgp';
import { CiliumFileSpeaker, renderCilium } from '../bgp/cilium';
import { KubernetesPodSource, PodClient, PodSource, StaticPodSource } from '../bgp/pods';
import type { Speaker } from '../bgp/speaker';
import { BgpSync } from '../bgp/sync';
import { toYaml } from '../bgp/yaml';
import { createLog, Log } from '../log';

export interface BgpSyncFile { node: PluginConf; bgp: BgpSyncConf }

/** Tests may swap the Kubernetes pod client; the default lists and watches this node's pods. */
let podClientFactory = (node: PluginConf, log: Log): PodClient => {
  if (!node.kubernetes) throw new Error('bgp.source "kubernetes" needs a "kubernetes" section (kubeconfig) in the config');
  return kubernetesPodClient(node.kubernetes.kubeconfig, (what, e) => log.warn('kubernetes watch problem', { what, error: e.message }));
};
export function registerPodClient(factory: (node: PluginConf, log: Log) => PodClient): void { podClientFactory = factory; }

export function loadBgpSyncConfig(file: string): BgpSyncFile {
  const { bgp, agent: _agent, legs: _legs, ...rest } = readConfigObject(file);
  let node: PluginConf;
  try {
    node = loadConf(JSON.stringify({ cniVersion: '1.1.0', name: 'podlegs', type: 'podlegs', ...rest }));
  } catch (e) {
    throw new Error(`config ${file}: ${e instanceof CniError ? `${e.message}${e.details ? ` (${e.details})` : ''}` : (e as Error).message}`);
  }
  const vtep = node.underlay.vtep !== 'auto' ? node.underlay.vtep : undefined;
  return { node, bgp: parseBgpSyncConf(bgp, { nodeName: process.env.NODE_NAME ?? os.hostname().toLowerCase(), underlayVtep: vtep, kubernetes: !!node.kubernetes }) };
}

/**
 * Fills in the pod/service CIDRs the config left out (allowed only with a kubernetes section) from
 * the cluster, once, before anything is applied: a config that cannot be completed is an error.
 */
export async function withDerivedCidrs(f: BgpSyncFile, log: Log): Promise<BgpSyncFile> {
  const need = missingClusterCidrs(f.bgp);
  if (!need.pod && !need.service) return f;
  const kubeconfig = f.node.kubernetes!.kubeconfig;
  const client = new KubeClient(await loadApiTarget(kubeconfig), () => loadApiTarget(kubeconfig));
  const d = await deriveClusterCidrs(client, need);
  if (d.ignored.length) log.warn('cluster CIDR values that are not prefixes ignored', { ignored: d.ignored.slice(0, 20) });
  log.info('cluster CIDRs derived for the deny list', { pod: need.pod ? d.pod.map((p) => p.text) : 'configured',
    service: need.service ? d.service.map((p) => p.text) : 'configured', looked: d.looked.map((l) => `${l.path}: ${l.outcome}`) });
  return { ...f, bgp: withClusterCidrs(f.bgp, d, (p) => d.origin.get(p.text)) };
}

export function makeSource(f: BgpSyncFile, log: Log): PodSource {
  if (f.bgp.source === 'kubernetes') {
    return new KubernetesPodSource(podClientFactory(f.node, log), f.bgp.nodeName);
  }
  return new StaticPodSource(f.node.stateDir, (files) => log.warn('unreadable state files ignored', { files }));
}

export function makeSpeaker(f: BgpSyncFile, log: Log): Speaker {
  if (f.bgp.speaker === 'cilium') {
    const c = f.bgp.cilium!;
    return new CiliumFileSpeaker(c.outputDir, { nodeName: f.bgp.nodeName, apiVersions: c.apiVersions, selectors: f.bgp.selectors, upstreamPeers: c.upstreamPeers, exportPodCIDR: c.exportPodCIDR });
  }
  return new GobgpSpeaker(f.bgp, log);
}

export async function runBgpSync(file: string, args: string[]): Promise<number> {
  const loaded = loadBgpSyncConfig(file);
  const log = createLog(loaded.node.log, { component: 'bgp-sync', node: loaded.bgp.nodeName }, !loaded.node.log.file);
  const f = await withDerivedCidrs(loaded, log);
  const source = makeSource(f, log);
  if (args.includes('--render')) {
    const desired = computeDesired(f.bgp, await source.list());
    const c = f.bgp.cilium;
    const objs = renderCilium(desired, { nodeName: f.bgp.nodeName, apiVersions: c?.apiVersions ?? ['v2', 'v2alpha1'], selectors: f.bgp.selectors,
      upstreamPeers: c?.upstreamPeers ?? [], exportPodCIDR: c?.exportPodCIDR ?? false });
    process.stdout.write(toYaml(objs));
    return 0;
  }
  const sync = new BgpSync(f.bgp, source, makeSpeaker(f, log), log);
  if (args.includes('--once')) {
    const r = await sync.reconcile({ dryRun: args.includes('--dry-run') });
    process.stdout.write(`${JSON.stringify({ applied: r.applied, ops: r.ops, problems: r.problems, neighbors: r.desired.neighbors, ms: r.ms }, null, 1)}\n`);
    return 0;
  }
  log.info('bgp-sync started', { speaker: f.bgp.speaker, source: f.bgp.source, api: `${f.bgp.api.host}:${f.bgp.api.port}`, pid: process.pid });
  sync.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await sync.stop();
  log.info('bgp-sync stopped');
  return 0;
}
