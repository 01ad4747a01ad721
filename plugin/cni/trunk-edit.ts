// Trunk VLAN edits: a trunk network's `vlans` list changed (a NAD edit, a reloaded static
// config) while trunk legs of it run. planTrunkEdit says what that means for one leg (pure),
// planTrunkEdits does so for every recorded attachment, applyTrunkEdit wires it on the host
// side and records it. Only the VLAN list is applied live; the rest of a trunk's config is
// reported in `notLive` and left as it is.
import { Kernel } from '../../overlay/kernel/kernel';
import { ensureSegment, noGrace, removeLegsAndEmptySegments, Segment } from '../../overlay/segment';
import { changeTrunkVlans, TrunkUnsupported } from '../../overlay/trunk-leg';
import { trunkFilterProgram } from '../../overlay/trunk-filter';
import { bridgeName, trunkVlanName } from '../../overlay/names';
import { legMtuLimit, MtuLimit, Underlay } from '../../overlay/underlay';
import { AttachmentState, LegState, TrunkVlanState, writeState } from './state';
import { checkUniqueVnis, NetworkConf } from './config';
import { CniError, Code, invalidConfig } from './errors';
import { legMtu } from './mtu';
import { fileRegistry } from './teardown';
import { checkTrunkLegs, TrunkNetworkConf } from './trunk-config';
import { trunkMemberLeg } from './trunk';

export interface TrunkEditPlan {
  add: TrunkVlanState[];
  remove: TrunkVlanState[];
  /** Same VID, another network: the sub-interface moves to the other segment. */
  retarget: { from: TrunkVlanState; to: TrunkVlanState }[];
  /** The leg's VLANs afterwards, in the order of the new list. */
  vlans: TrunkVlanState[];
  /** What else changed that a running trunk does not take (the leg keeps what it has). */
  notLive: string[];
}

export const editChanges = (p: TrunkEditPlan): number => p.add.length + p.remove.length + p.retarget.length;

/** A trunk network as the config says now, with the (access) networks its VLANs name. */
export interface TrunkNow { trunk: TrunkNetworkConf; networks: Map<string, NetworkConf> }

/**
 * What a changed trunk network means for one running trunk leg. `next.vlans` was validated
 * when the config was parsed (parseTrunkNetwork: VIDs, duplicates, size); here it is checked
 * against the pod: refused (code 7) for an unknown network, a network the pod already has
 * through another leg or as the trunk's native network, a VNI twice, an MTU the underlay
 * cannot carry. `others`: the attachment's other legs. A VID that now names another network
 * moves to it; a VID on the same network keeps its VNI and MTU even if that network's changed.
 */
export function planTrunkEdit(leg: LegState, others: LegState[], now: TrunkNow, limit: MtuLimit): TrunkEditPlan {
  const t = leg.trunk;
  if (!t) throw new Error(`leg ${leg.ifname} is not a trunk leg`);
  const what = `trunk ${leg.ifname} (network ${leg.network})`;
  const refuse = (msg: string): CniError => invalidConfig(`the new VLAN list of ${what} cannot be applied: ${msg}; the leg keeps VLANs ${t.vlans.map((v) => v.vid).join(',')}`);
  const notLive: string[] = [];
  const nativeNow = t.native?.network;
  if ((now.trunk.nativeNetwork ?? '') !== (nativeNow ?? '')) notLive.push(`nativeNetwork ${nativeNow ?? 'none'} → ${now.trunk.nativeNetwork ?? 'none'}`);
  const old = new Map(t.vlans.map((v) => [v.vid, v]));
  const vlans = now.trunk.vlans.map((v): TrunkVlanState => {
    const n = now.networks.get(v.network);
    if (!n) throw refuse(`VLAN ${v.vid}: network ${v.network} is not defined`);
    // A VLAN still on its network keeps what it has: a VNI or MTU edit of that network is not
    // a VLAN-list edit (running legs keep theirs, like access legs).
    const o = old.get(v.vid);
    if (o?.network === v.network) {
      if (o.vni !== n.vni) notLive.push(`VLAN ${v.vid}: network ${v.network} VNI ${o.vni} → ${n.vni}`);
      return o;
    }
    try {
      legMtu(`network ${v.network}`, n.mtu, limit);
    } catch (e) {
      throw refuse(`VLAN ${v.vid}: ${(e as Error).message}`);
    }
    return { vid: v.vid, network: v.network, vni: n.vni, hostIf: trunkVlanName(leg.hostIf, v.vid), mtu: Math.min(n.mtu ?? leg.mtu, leg.mtu) };
  });
  // The pod's rules as at ADD, with the native network it really has.
  const { nativeNetwork: _n, ...rest } = now.trunk;
  const trunkAsRunning: TrunkNetworkConf = { ...rest, name: leg.network, ...(nativeNow ? { nativeNetwork: nativeNow } : {}) };
  try {
    checkTrunkLegs([...others.map((l) => ({ network: l.network, interface: l.ifname })), { network: leg.network, interface: leg.ifname, trunk: true }],
      new Map([[leg.network, trunkAsRunning]]));
    checkUniqueVnis([
      ...others.filter((l) => !l.trunk).map((l) => ({ name: l.network, vni: l.vni })),
      ...vlans.map((v) => ({ name: v.network, vni: v.vni })),
      ...(t.native ? [{ name: t.native.network, vni: t.native.vni }] : []),
    ]);
  } catch (e) {
    throw refuse((e as Error).message);
  }
  const plan: TrunkEditPlan = { add: [], remove: [], retarget: [], vlans, notLive };
  for (const v of vlans) {
    const o = old.get(v.vid);
    if (!o) plan.add.push(v);
    else if (o !== v) plan.retarget.push({ from: o, to: v });
  }
  plan.remove = t.vlans.filter((o) => !vlans.some((v) => v.vid === o.vid));
  return plan;
}

export type PlannedEdit = { state: AttachmentState; leg: LegState } & ({ plan: TrunkEditPlan } | { refused: CniError });

/** A trunk network as its source says now; undefined: not this source's network, or no longer defined (left alone). */
export type TrunkLookup = (network: string, s: AttachmentState) => TrunkNow | undefined | Promise<TrunkNow | undefined>;

/** The edits of every complete attachment's trunk leg whose network `lookup` knows; legs equal to it are left out. */
export async function planTrunkEdits(states: AttachmentState[], lookup: TrunkLookup, limit: MtuLimit): Promise<PlannedEdit[]> {
  const out: PlannedEdit[] = [];
  for (const state of states) {
    if (!state.complete) continue; // an ADD in flight or cut short: its own rollback/DEL owns it
    const leg = state.legs.find((l) => l.trunk);
    if (!leg) continue;
    let now: TrunkNow | undefined;
    try {
      now = await lookup(leg.network, state);
    } catch (e) {
      out.push({ state, leg, refused: e instanceof CniError ? e : invalidConfig((e as Error).message) });
      continue;
    }
    if (!now) continue;
    try {
      const plan = planTrunkEdit(leg, state.legs.filter((l) => l !== leg), now, limit);
      if (editChanges(plan) || plan.notLive.length) out.push({ state, leg, plan });
    } catch (e) {
      out.push({ state, leg, refused: e instanceof CniError ? e : invalidConfig((e as Error).message) });
    }
  }
  return out;
}

export interface EditContext { node: Kernel; stateDir: string; u: Underlay; port: number }

/**
 * Wires one plan (the caller holds the node lock). Order: segments of new VLANs, state with
 * the union of old and new VLANs (a crash from here on leaves a record DEL can undo), the
 * kernel change (changeTrunkVlans: sub-interfaces, then the filter swapped in place), members
 * of new VLANs registered, removed VLANs' sub-interfaces and the segments they leave empty
 * deleted in one batch, their members unregistered, and last the state with exactly the new
 * list. A kernel failure before the filter swap puts the old VLANs back and rethrows.
 */
export async function applyTrunkEdit(c: EditContext, state: AttachmentState, leg: LegState, plan: TrunkEditPlan): Promise<void> {
  const t = leg.trunk!;
  const before = t.vlans;
  const incoming = [...plan.add, ...plan.retarget.map((r) => r.to)];
  const segs = new Map<number, Segment>();
  for (const v of incoming) if (!segs.has(v.vni)) segs.set(v.vni, (await ensureSegment(c.node, v.vni, c.u, c.port)).segment);
  t.vlans = [...before, ...incoming];
  writeState(c.stateDir, state);
  try {
    await changeTrunkVlans(c.node, leg.hostIf, {
      add: plan.add.map((v) => ({ vid: v.vid, hostIf: v.hostIf, mtu: v.mtu, segment: segs.get(v.vni)! })),
      retarget: plan.retarget.map((r) => ({ hostIf: r.to.hostIf, mtu: r.to.mtu, segment: segs.get(r.to.vni)! })),
      vids: plan.vlans.map((v) => v.vid),
      native: !!t.native,
    });
  } catch (e) {
    await undo(c, state, leg, before, plan).catch(() => undefined);
    t.vlans = before;
    writeState(c.stateDir, state);
    if (e instanceof TrunkUnsupported) throw new CniError(Code.NotAvailable, e.message);
    throw e;
  }
  const registry = fileRegistry(state.registry);
  const owner = (vid: number): string => `${state.containerId}/${state.ifname}/${trunkMemberLeg(leg.ifname, vid)}`;
  const outgoing = [...plan.remove, ...plan.retarget.map((r) => r.from)];
  if (leg.mac) for (const v of incoming) registry?.register({ vni: v.vni, vtep: state.vtep, mac: leg.mac, owner: owner(v.vid), network: v.network });
  await removeLegsAndEmptySegments(c.node, { hostIfs: plan.remove.map((v) => v.hostIf), vnis: outgoing.map((v) => v.vni), owner: { local: state.vtep, port: state.port }, grace: noGrace() });
  for (const v of outgoing) registry?.unregister({ vni: v.vni, vtep: state.vtep, owner: owner(v.vid) });
  t.vlans = plan.vlans;
  writeState(c.stateDir, state);
}

/** The old VLANs back: old filter, retargeted sub-interfaces home, added ones and the segments made for them deleted. */
async function undo(c: EditContext, state: Pick<AttachmentState, 'vtep' | 'port'>, leg: LegState, before: TrunkVlanState[], plan: TrunkEditPlan): Promise<void> {
  const host = await c.node.linkByName(leg.hostIf);
  if (host) await c.node.replaceIngressBpf(host.index, trunkFilterProgram(before.map((v) => v.vid), !!leg.trunk!.native));
  for (const r of plan.retarget) {
    const [sub, br] = [await c.node.linkByName(r.from.hostIf), await c.node.linkByName(bridgeName(r.from.vni))];
    if (sub && br) await c.node.setLink(sub.index, { master: br.index });
  }
  await removeLegsAndEmptySegments(c.node, { hostIfs: plan.add.map((v) => v.hostIf), vnis: [...plan.add, ...plan.retarget.map((r) => r.to)].map((v) => v.vni), owner: { local: state.vtep, port: state.port }, grace: noGrace() });
}

/** Static mode: the trunk networks of the node config (Kubernetes NAD keys, "ns/name", are not its own). */
export const staticTrunkLookup = (conf: { trunks?: Map<string, TrunkNetworkConf>; networks: Map<string, NetworkConf> }) =>
  (network: string): TrunkNow | undefined => {
    if (network.includes('/')) return undefined;
    const trunk = conf.trunks?.get(network);
    return trunk ? { trunk, networks: conf.networks } : undefined;
  };

export type EditOutcome = { state: AttachmentState; leg: LegState } & ({ plan: TrunkEditPlan; ms: number } | { refused: CniError } | { failed: Error });

export interface EditLog { info(m: string, meta?: Record<string, unknown>): void; warn(m: string, meta?: Record<string, unknown>): void }

/**
 * Plans and applies the VLAN edits of every running trunk leg `lookup` knows; logs each
 * outcome. The caller holds the node lock (no ADD, DEL or segment removal interleaves).
 */
export async function runTrunkEdits(c: EditContext & { log: EditLog; listStates: () => AttachmentState[]; warned?: Map<string, string> },
  lookup: TrunkLookup): Promise<EditOutcome[]> {
  const out: EditOutcome[] = [];
  const warned = new Map<string, string>();
  // The same refusal is logged once, not at every NAD event or reload that leaves it standing.
  const warnOnce = (key: string, msg: string, meta: Record<string, unknown>): boolean => {
    warned.set(key, JSON.stringify(meta));
    if (c.warned?.get(key) === JSON.stringify(meta)) return false;
    c.log.warn(msg, meta);
    return true;
  };
  for (const e of await planTrunkEdits(c.listStates(), lookup, legMtuLimit(c.u))) {
    const id = `${e.state.containerId}/${e.state.ifname}/${e.leg.ifname}`;
    const meta = { container: e.state.containerId, pod: e.state.pod?.name ? `${e.state.pod.namespace ?? ''}/${e.state.pod.name}` : undefined, trunk: e.leg.ifname, network: e.leg.network };
    if ('refused' in e) {
      if (warnOnce(id, 'trunk VLAN edit refused; the leg keeps its VLANs', { ...meta, error: e.refused.message })) out.push(e);
      continue;
    }
    const { plan } = e;
    if (plan.notLive.length) warnOnce(`${id} notLive`, 'trunk change not applied to the running leg (only its VLAN list is)', { ...meta, unchanged: plan.notLive });
    if (!editChanges(plan)) continue;
    const t0 = process.hrtime.bigint();
    try {
      await applyTrunkEdit(c, e.state, e.leg, plan);
    } catch (err) {
      // Tried again at the next trigger; said once while the reason stays the same.
      if (warnOnce(id, 'trunk VLAN edit failed; the leg keeps its VLANs', { ...meta, error: (err as Error).message })) out.push({ state: e.state, leg: e.leg, failed: err as Error });
      continue;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    c.log.info('trunk VLANs changed', {
      ...meta, added: plan.add.map((v) => v.vid), removed: plan.remove.map((v) => v.vid), retargeted: plan.retarget.map((r) => r.to.vid),
      vlans: plan.vlans.map((v) => `${v.vid}:${v.network}`), durationMs: Math.round(ms * 10) / 10,
    });
    out.push({ state: e.state, leg: e.leg, plan, ms });
  }
  if (c.warned) {
    c.warned.clear();
    for (const [k, v] of warned) c.warned.set(k, v);
  }
  return out;
}
