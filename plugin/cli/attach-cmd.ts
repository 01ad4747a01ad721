// `podlegs attach` / `podlegs detach`: one more leg on a running container, or one less, in
// static mode (podman, any runtime): the container is named as its ADD recorded it (container ID
// and netns), the leg's network comes from the config's `networks`, and the work is ADD's own leg
// code (plugin/cni/leg-set.ts) under the node lock, recorded in the state file DEL reads.
import * as fs from 'fs';
import { Kernel } from '../../overlay/kernel/kernel';
import { withNodeLock } from '../../overlay/node-lock';
import { legMtuLimit } from '../../overlay/underlay';
import { loadConf, PluginConf } from '../cni/config';
import { CniError, Code, invalidConfig } from '../cni/errors';
import { nodeUnderlay, openPod } from '../cni/common';
import { CniVersion } from '../cni/versions';
import { attachLegSet, detachLegSet, planLeg, sandboxEnv, staleSandbox } from '../cni/leg-set';
import { AttachmentState, readState } from '../cni/state';
import { createLog, Log } from '../log';
import { nextFreeIfname } from '../hotplug/plan';
import { ATTACH_USAGE, DETACH_USAGE } from './attach-usage';

interface Args { values: Map<string, string[]> }

function parseArgs(args: string[], known: string[], usage: string): Args {
  const values = new Map<string, string[]>();
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i];
    const v = args[i + 1];
    if (!known.includes(k) || v === undefined) throw new Error(`${k === undefined ? 'missing arguments' : `unknown or incomplete option ${k}`}\n${usage}`);
    values.set(k, [...(values.get(k) ?? []), v]);
  }
  return { values };
}
const one = (a: Args, k: string): string | undefined => a.values.get(k)?.at(-1);
const need = (a: Args, k: string, usage: string): string => {
  const v = one(a, k);
  if (v === undefined) throw new Error(`${k} is required\n${usage}`);
  return v;
};

/** The podlegs entry of a conflist (cniVersion and name from the list), or the file as one entry. */
function entryOf(file: string, leg?: Record<string, unknown>): PluginConf {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`config ${file}: ${(e as Error).message}`);
  }
  let entry = raw;
  if (Array.isArray(raw.plugins)) {
    const p = (raw.plugins as Record<string, unknown>[]).find((x) => x?.type === 'podlegs');
    if (!p) throw new Error(`config ${file}: the conflist has no podlegs plugin`);
    entry = { cniVersion: raw.cniVersion, name: raw.name, ...p };
  }
  const { legs: _l, prevResult: _p, ...rest } = entry;
  const conf = loadConf(JSON.stringify({ cniVersion: '1.0.0', name: 'podlegs', ...rest, legs: leg ? [leg] : [] }));
  if (conf.kubernetes) throw invalidConfig(`config ${file} is not a static-mode config (it has a "kubernetes" section: there, edit the pod's networks annotation)`);
  return conf;
}

/** The container's attachment as recorded, checked against what the caller says it is. */
function recorded(conf: PluginConf, containerId: string, ifname: string, netns?: string): AttachmentState {
  const s = readState(conf.stateDir, containerId, ifname);
  if (!s?.complete) throw new CniError(Code.UnknownContainer, `no podlegs attachment recorded for container ${containerId} (interface ${ifname}) in ${conf.stateDir}`);
  if (netns !== undefined && netns !== s.netns) throw new CniError(Code.UnknownContainer, `container ${containerId} was attached in netns ${s.netns}, not ${netns}`);
  return s;
}

const logFor = (conf: PluginConf, command: string, containerId: string): Log => createLog(conf.log, { command, containerId });

export async function runAttach(args: string[]): Promise<number> {
  const a = parseArgs(args, ['--config', '--container', '--netns', '--network', '--interface', '--ip', '--mac', '--ifname'], ATTACH_USAGE);
  const [file, containerId, netns, network] = ['--config', '--container', '--netns', '--network'].map((k) => need(a, k, ATTACH_USAGE));
  const ifname = one(a, '--ifname') ?? 'eth0';
  const probe = entryOf(file);
  const out = await withNodeLock(probe.stateDir, async () => {
    const state = recorded(probe, containerId, ifname, netns);
    const stale = staleSandbox(state);
    if (stale) throw new CniError(Code.UnknownContainer, stale);
    if (state.legs.some((l) => l.network === network)) throw invalidConfig(`container ${containerId} already has a leg on network ${network}; one leg per network`);
    const pod = openPod(state.netns);
    const node = Kernel.open();
    try {
      const used = new Set([...(await pod.links()).map((l) => l.name), ...state.legs.map((l) => l.ifname)]);
      const leg = { network, interface: one(a, '--interface') ?? nextFreeIfname(used), ...(a.values.has('--ip') ? { ips: a.values.get('--ip') } : {}), ...(one(a, '--mac') ? { mac: one(a, '--mac') } : {}) };
      // The leg goes through the config's own validation (network known, name, addresses, MAC).
      const conf: PluginConf = { ...entryOf(file, leg), cniVersion: state.cniVersion as CniVersion };
      const env = sandboxEnv(state);
      const log = logFor(conf, 'ATTACH', containerId);
      const u = await nodeUnderlay(node, conf);
      const planned = planLeg(conf, env, conf.legs[0], legMtuLimit(u));
      await attachLegSet({ node, pod, conf, env, u, log }, state, [planned]);
      log.info('leg attached to a running container', { ifname: planned.ifname, network, vni: planned.vni, mac: planned.mac, ips: planned.ips });
      return { interface: planned.ifname, network, vni: planned.vni, mac: planned.mac, ips: planned.ips, mtu: planned.mtu };
    } finally {
      node.close();
      pod.close();
    }
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return 0;
}

export async function runDetach(args: string[]): Promise<number> {
  const a = parseArgs(args, ['--config', '--container', '--netns', '--network', '--interface', '--ifname'], DETACH_USAGE);
  const [file, containerId] = ['--config', '--container'].map((k) => need(a, k, DETACH_USAGE));
  const byIf = one(a, '--interface');
  const byNet = one(a, '--network');
  if (!byIf === !byNet) throw new Error(`give one of --interface and --network\n${DETACH_USAGE}`);
  const conf = entryOf(file);
  const log = logFor(conf, 'DETACH', containerId);
  const gone = await withNodeLock(conf.stateDir, async () => {
    const state = recorded(conf, containerId, one(a, '--ifname') ?? 'eth0', one(a, '--netns'));
    const leg = state.legs.find((l) => (byIf ? l.ifname === byIf : l.network === byNet));
    if (!leg) throw invalidConfig(`container ${containerId} has no leg ${byIf ? `named ${byIf}` : `on network ${byNet}`} (it has ${state.legs.map((l) => `${l.ifname}: ${l.network}`).join(', ') || 'none'})`);
    const node = Kernel.open();
    try {
      return await detachLegSet(node, state, [leg.ifname], sandboxEnv(state), conf.stateDir, log);
    } finally {
      node.close();
    }
  });
  log.info('leg detached from a running container', { legs: gone.map((l) => l.ifname) });
  process.stdout.write(`${JSON.stringify({ detached: gone.map((l) => ({ interface: l.ifname, network: l.network, vni: l.vni })) })}\n`);
  return 0;
}
