// Test doubles for the agent: a kernel that keeps links and VXLAN FDB entries in
// memory with the kernel's add/replace/delete semantics, and a membership source.
import { FdbChange, FdbFailure, LinkInfo, ZERO_MAC } from '../../overlay/kernel/kernel';
import { KernelError } from '../../overlay/kernel/errors';
import { SegmentKernel } from '../../overlay/agent/reconciler';
import { Member, MemberProblem, MembershipSource } from '../../overlay/registry/member';

export interface FakeFdb { ifindex: number; mac: string; dst: string; permanent: boolean }

export class FakeKernel implements SegmentKernel {
  links_: LinkInfo[] = [];
  fdb: FakeFdb[] = [];
  batches: FdbChange[][] = [];
  deleted: number[] = [];
  private next = 10;

  /** A podlegs segment (plbr + plvx, local address `local`, port 4789) with `legs` ports; returns the VXLAN index. */
  addSegment(vni: number, legs = 1, local = '192.0.2.11'): number {
    const br = this.next++;
    const vx = this.next++;
    this.links_.push({ index: br, name: `plbr${vni}`, kind: 'bridge', mtu: 1450, mac: '', up: true });
    this.links_.push({ index: vx, name: `plvx${vni}`, kind: 'vxlan', mtu: 1450, mac: '', up: true, master: br, vxlan: { vni, port: 4789, local } });
    for (let i = 0; i < legs; i++) this.addLeg(vni);
    return vx;
  }

  addLeg(vni: number): void {
    const br = this.links_.find((l) => l.name === `plbr${vni}`)!;
    const i = this.next++;
    this.links_.push({ index: i, name: `pl${i.toString(16).padStart(12, '0')}`, kind: 'veth', mtu: 1450, mac: '', up: true, master: br.index });
  }

  removeLegs(vni: number): void {
    const br = this.links_.find((l) => l.name === `plbr${vni}`)!;
    this.links_ = this.links_.filter((l) => l.master !== br.index || l.kind === 'vxlan');
  }

  entries(vni: number): string[] {
    const vx = this.links_.find((l) => l.name === `plvx${vni}`);
    return this.fdb.filter((e) => e.ifindex === vx?.index).map((e) => `${e.mac} ${e.dst}`).sort();
  }

  async links(): Promise<LinkInfo[]> { return this.links_.map((l) => ({ ...l })); }

  async fdbAll(): Promise<(FakeFdb & { mac: string })[]> { return this.fdb.map((e) => ({ ...e })); }

  async deleteLink(index: number): Promise<boolean> {
    const had = this.links_.some((l) => l.index === index);
    this.links_ = this.links_.filter((l) => l.index !== index).map((l) => (l.master === index ? { ...l, master: undefined } : l));
    this.fdb = this.fdb.filter((e) => e.ifindex !== index);
    if (had) this.deleted.push(index);
    return had;
  }

  async deleteLinks(indexes: number[]): Promise<void> {
    for (const i of indexes) await this.deleteLink(i);
  }

  async fdbBatch(changes: FdbChange[]): Promise<FdbFailure[]> {
    this.batches.push(changes);
    const failures: FdbFailure[] = [];
    for (const c of changes) {
      if (!this.links_.some((l) => l.index === c.vxlanIndex && l.kind === 'vxlan')) {
        failures.push({ change: c, error: new KernelError(`fdb ${c.op}`, 19) }); // ENODEV
        continue;
      }
      const same = (e: FakeFdb): boolean => e.ifindex === c.vxlanIndex && e.mac === c.mac;
      if (c.op === 'del') {
        this.fdb = this.fdb.filter((e) => !(same(e) && e.dst === c.dst));
      } else if (c.mac === ZERO_MAC) {
        if (!this.fdb.some((e) => same(e) && e.dst === c.dst)) this.fdb.push({ ifindex: c.vxlanIndex, mac: c.mac, dst: c.dst, permanent: true });
      } else {
        const i = this.fdb.findIndex(same);
        if (i >= 0) this.fdb[i] = { ...this.fdb[i], dst: c.dst };
        else this.fdb.push({ ifindex: c.vxlanIndex, mac: c.mac, dst: c.dst, permanent: true });
      }
    }
    return failures;
  }
}

export class FakeSource implements MembershipSource {
  members: Member[] = [];
  problems: MemberProblem[] = [];
  fail?: Error;
  listed = 0;
  resyncs = 0;
  private listeners: (() => void)[] = [];

  async list(): Promise<{ members: Member[]; problems: MemberProblem[] }> {
    this.listed++;
    if (this.fail) throw this.fail;
    return { members: [...this.members], problems: [...this.problems] };
  }

  watch(onChange: () => void): () => void {
    this.listeners.push(onChange);
    return () => { this.listeners = this.listeners.filter((l) => l !== onChange); };
  }

  resync(): void { this.resyncs++; }

  set(members: Member[]): void {
    this.members = members;
    for (const l of this.listeners) l();
  }
}

export const member = (vni: number, vtep: string, n: number): Member =>
  ({ vni, vtep, mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`, owner: `c${n}/eth0/net1` });

export class MemLog {
  lines: { level: string; msg: string; meta?: Record<string, unknown> }[] = [];
  info = (msg: string, meta?: Record<string, unknown>): void => { this.lines.push({ level: 'info', msg, meta }); };
  warn = (msg: string, meta?: Record<string, unknown>): void => { this.lines.push({ level: 'warn', msg, meta }); };
  warnings(): string[] { return this.lines.filter((l) => l.level === 'warn').map((l) => `${l.msg} ${JSON.stringify(l.meta)}`); }
}
