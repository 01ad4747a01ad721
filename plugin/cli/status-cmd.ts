// `podlegs status [--json] [--config FILE]`: this node's segments, legs, remote
// VTEPs per VNI and FDB entries, read from the kernel (the truth), plus the
// attachments podlegs recorded and, when it runs, what the agent says. With
// --config the registry is read too, and each segment says whether its FDB
// equals what the membership asks for.
import { Kernel, ZERO_MAC } from '../../overlay/kernel/kernel';
import { readSegments, planFdb } from '../../overlay/agent/reconciler';
import { desiredState } from '../../overlay/agent/desired';
import { queryAgent } from '../../overlay/agent/lock';
import { bridgeName, vxlanName } from '../../overlay/names';
import { FileRegistry } from '../../overlay/registry/file-registry';
import { Member } from '../../overlay/registry/member';
import { resolveUnderlay } from '../../overlay/underlay';
import { listStates } from '../cni/state';
import { guardedDevices } from '../cni/guarded-devices';
import { GuardDrops, GuardDropRow } from '../../overlay/agent/guard-drops';
import type { PluginConf } from '../cni/config';

interface SegmentStatus {
  vni: number;
  bridge: string;
  vxlan: string;
  legs: string[];                      // host-side ports of the bridge
  flood: string[];                     // remote VTEPs getting BUM traffic
  macs: { mac: string; dst: string }[]; // static remote-member entries
  members?: number;                    // registry members of this VNI, all nodes (with --config)
  drift?: string[];                    // changes the agent would make (with --config)
}
interface FdbRow { vni: number; mac: string; dst: string; type: 'flood' | 'mac' }

export interface StatusReport {
  vtep?: string;
  agent: Record<string, unknown> | null;
  segments: SegmentStatus[];
  attachments: { containerId: string; ifname: string; legs: { ifname: string; hostIf: string; network: string; vni: number; mac?: string; ips: string[] }[] }[];
  /** Leg guards (security "enforce") and the frames each dropped. */
  guards: GuardDropRow[];
  fdb: FdbRow[];
  registryProblems?: { where: string; reason: string }[];
}

export async function collectStatus(conf: PluginConf | undefined): Promise<StatusReport> {
  const k = Kernel.open();
  try {
    const segs = await readSegments(k);
    let vtep: string | undefined;
    let members: Member[] | undefined;
    let registryProblems: StatusReport['registryProblems'];
    if (conf) {
      vtep = (await resolveUnderlay(k, conf.underlay).catch(() => undefined))?.vtep;
      if (conf.registry.type === 'file') {
        const listed = await new FileRegistry(conf.registry.path).list();
        members = listed.members;
        registryProblems = listed.problems;
      }
    }
    const want = members && vtep ? desiredState(members, vtep, segs.keys()).segments : undefined;
    const segments: SegmentStatus[] = [...segs.values()].sort((a, b) => a.vni - b.vni).map((s) => {
      const out: SegmentStatus = {
        vni: s.vni, bridge: bridgeName(s.vni), vxlan: vxlanName(s.vni), legs: [...s.legs].sort(),
        flood: [...s.flood].sort(),
        macs: [...s.macs].flatMap(([mac, dsts]) => [...dsts].map((dst) => ({ mac, dst }))).sort((a, b) => a.mac.localeCompare(b.mac)),
      };
      if (members) out.members = members.filter((m) => m.vni === s.vni).length;
      if (want) out.drift = planFdb(new Map([[s.vni, s]]), want).map((c) => `${c.op} ${c.mac} dst ${c.dst}`);
      return out;
    });
    const fdb: FdbRow[] = segments.flatMap((s) => [
      ...s.flood.map((dst): FdbRow => ({ vni: s.vni, mac: ZERO_MAC, dst, type: 'flood' })),
      ...s.macs.map((e): FdbRow => ({ vni: s.vni, ...e, type: 'mac' })),
    ]);
    const states = listStates(conf?.stateDir ?? '/var/lib/podlegs').states;
    const guards = await new GuardDrops(k, () => guardedDevices(states)).read();
    const attachments = states.map((s) => ({
      containerId: s.containerId, ifname: s.ifname,
      legs: s.legs.map((l) => ({ ifname: l.ifname, hostIf: l.hostIf, network: l.network, vni: l.vni, mac: l.mac, ips: l.ips })),
    }));
    return { ...(vtep ? { vtep } : {}), agent: (await queryAgent()) ?? null, segments, attachments, guards, fdb, ...(registryProblems ? { registryProblems } : {}) };
  } finally {
    k.close();
  }
}

/** Fixed-width columns; the last column is not padded. */
function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] + 2))).join('').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

export function formatStatus(r: StatusReport): string {
  const a = r.agent;
  const agentLine = a
    ? `agent: running, pid ${String(a.pid)}${a.ok === false ? ', UNHEALTHY' : ''}${typeof a.detail === 'object' && a.detail && 'runs' in a.detail ? `, ${String((a.detail as { runs: unknown }).runs)} reconcile runs` : ''}`
    : 'agent: not running in this network namespace';
  const out = [`${r.vtep ? `vtep: ${r.vtep}    ` : ''}${agentLine}`, ''];
  const withReg = r.segments.some((s) => s.members !== undefined);
  out.push(table(['VNI', 'BRIDGE', 'VXLAN', 'LEGS', 'MACS', ...(withReg ? ['MEMBERS', 'IN SYNC'] : []), 'REMOTE VTEPS'],
    r.segments.map((s) => [String(s.vni), s.bridge, s.vxlan, String(s.legs.length), String(s.macs.length),
      ...(withReg ? [String(s.members ?? '-'), s.drift === undefined ? '-' : s.drift.length ? `no (${s.drift.length})` : 'yes'] : []),
      s.flood.join(', ') || '-'])));
  const legs = r.attachments.flatMap((at) => at.legs.map((l) => [at.containerId.slice(0, 12), l.ifname, l.hostIf, l.network, String(l.vni), l.mac ?? '-', l.ips.join(' ') || '-']));
  out.push('', table(['CONTAINER', 'LEG', 'HOST IF', 'NETWORK', 'VNI', 'MAC', 'IPS'], legs));
  if (r.guards.length) out.push('', table(['POD', 'LEG', 'NETWORK', 'HOST IF', 'SECURITY DROPS'], r.guards.map((g) => [g.pod, g.interface, g.network, g.hostIf, String(g.drops)])));
  out.push('', table(['VNI', 'MAC', 'DST', 'TYPE'], r.fdb.map((e) => [String(e.vni), e.mac, e.dst, e.type])));
  for (const s of r.segments) for (const d of s.drift ?? []) out.push(`drift: vni ${s.vni}: ${d}`);
  for (const p of r.registryProblems ?? []) out.push(`registry: skipped ${p.where}: ${p.reason}`);
  return `${out.join('\n')}\n`;
}

export async function runStatus(conf: PluginConf | undefined, json: boolean): Promise<number> {
  const r = await collectStatus(conf);
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : formatStatus(r));
  return 0;
}
