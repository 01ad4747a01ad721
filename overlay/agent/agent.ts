// The node agent loop: reconcile on every membership event (debounced), on a
// periodic full resync that repairs drift, and when an empty segment's grace
// period ends. One run at a time; events during a run cause one more run.
import type { LinkInfo } from '../kernel/kernel';
import { MemberProblem, MembershipSource } from '../registry/member';
import { desiredState } from './desired';
import { AgentMetrics } from './metrics';
import { applyFdb, planFdb, readSegments, SegmentKernel, SegmentState } from './reconciler';
import { Grace, removeLegsAndEmptySegments, segmentsToRemove, SegmentOwner } from '../segment';
import type { NodeWriter } from './node-writer';
import type { Health } from './http';

type Meta = Record<string, unknown>;
export interface AgentLog { info(m: string, meta?: Meta): void; warn(m: string, meta?: Meta): void; debug?(m: string, meta?: Meta): void }

export interface AgentOptions {
  localVtep: string;
  /** The VXLAN UDP port of this node's segments: with localVtep, what makes a segment this node's to remove. */
  port?: number;
  resyncMs: number;
  debounceMs: number;
  /** How long a segment without local legs is kept before it is removed. */
  graceMs: number;
  log: AgentLog;
  metrics?: AgentMetrics;
  /** VNIs an ADD is building right now: never removed, even while empty. */
  busyVnis?: () => Set<number>;
  /** Runs segment removal under the node lock the plugin's DEL/GC take. */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  now?: () => number;
}

export type Trigger = 'start' | 'event' | 'resync' | 'grace' | 'manual';

export interface ReconcileReport {
  trigger: Trigger;
  ok: boolean;
  changes: number;
  failures: number;
  removed: number[];
  durationMs: number;
  /** Where the run's time went (ms): registry read, kernel dumps, diff, netlink apply. */
  phases?: { listMs: number; dumpMs: number; planMs: number; applyMs: number };
  error?: string;
}

const MAX_LOGGED_CHANGES = 20;

/** Runs that coincide merge into one; a full resync must not be downgraded to an event run. */
const RANK: Record<Trigger, number> = { manual: 0, event: 1, grace: 2, resync: 3, start: 4 };
const stronger = (a: Trigger | undefined, b: Trigger): Trigger => (a !== undefined && RANK[a] >= RANK[b] ? a : b);

export class Agent {
  private current?: Promise<void>;
  private again?: Trigger;
  private resyncTimer?: NodeJS.Timeout;
  private debounceTimer?: NodeJS.Timeout;
  private pending?: Trigger;
  private graceTimer?: NodeJS.Timeout;
  private graceWake?: number;
  private stopWatch?: () => void;
  private stopped = false;
  private readonly emptySince = new Map<number, number>();
  private reported = new Map<string, string>(); // problem "where" → reason, logged once
  private readonly now: () => number;
  runs = 0;
  errors = 0;
  last?: ReconcileReport;
  lastSuccessAt?: number;
  segments = 0;

  constructor(private readonly k: SegmentKernel, private readonly source: MembershipSource, private readonly o: AgentOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    // A change to this node's own members alters nothing here (its FDB names remote members only):
    // the registry writes of the calls this agent serves cause no run.
    this.stopWatch = this.source.watch((hint) => { if (hint?.vtep !== this.o.localVtep) this.kick('event'); });
    this.resyncTimer = setInterval(() => this.kick('resync', 0), this.o.resyncMs);
    this.kick('start', 0);
  }

  /** Stops watching and waits for a run in progress; the kernel is left as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatch?.();
    clearInterval(this.resyncTimer);
    clearTimeout(this.debounceTimer);
    clearTimeout(this.graceTimer);
    await this.current;
  }

  /**
   * Schedules a run. A pending run is not pushed back by further events, so a
   * steady stream of events cannot starve reconciliation: latency ≤ debounce.
   */
  kick(trigger: Trigger, delay = this.o.debounceMs): void {
    if (this.stopped) return;
    this.pending = stronger(this.pending, trigger);
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      const t = this.pending ?? trigger;
      this.debounceTimer = undefined;
      this.pending = undefined;
      void this.reconcile(t);
    }, delay);
  }

  /** Runs now, or once more after the run in progress; resolves when that is done. */
  reconcile(trigger: Trigger = 'manual'): Promise<void> {
    if (this.debounceTimer) {
      // A run now does what the pending one would have: it replaces it.
      clearTimeout(this.debounceTimer);
      this.debounceTimer = undefined;
      trigger = stronger(this.pending, trigger);
      this.pending = undefined;
    }
    if (this.current) {
      this.again = stronger(this.again, trigger);
      return this.current;
    }
    this.current = (async () => {
      let t: Trigger | undefined = trigger;
      while (t && !this.stopped) {
        this.again = undefined;
        this.last = await this.runOnce(t);
        t = this.again;
      }
    })().finally(() => { this.current = undefined; });
    return this.current;
  }

  private async runOnce(trigger: Trigger): Promise<ReconcileReport> {
    const t0 = process.hrtime.bigint();
    const m = this.o.metrics;
    const report: ReconcileReport = { trigger, ok: true, changes: 0, failures: 0, removed: [], durationMs: 0 };
    this.runs++;
    m?.reconcileRuns.inc();
    const lap = (() => { let t = t0; return (): number => { const n = process.hrtime.bigint(); const ms = Number(n - t) / 1e6; t = n; return ms; }; })();
    try {
      let listed;
      try {
        if (trigger === 'resync' || trigger === 'start') this.source.resync?.();
        listed = await this.source.list();
      } catch (e) {
        m?.registryErrors.inc();
        throw new Error(`membership source failed, kernel left as it is: ${(e as Error).message}`);
      }
      const listMs = lap();
      const links = await this.k.links();
      const actual = await readSegments(this.k, links);
      const dumpMs = lap();
      const want = desiredState(listed.members, this.o.localVtep, actual.keys());
      this.reportProblems([...listed.problems, ...want.problems]);
      const changes = planFdb(actual, want.segments);
      const planMs = lap();
      // A segment deleted between the dump and the apply (a concurrent DEL) is no failure:
      // there is nothing left to program. Run once more to see the new state.
      const refused = await applyFdb(this.k, changes);
      report.phases = { listMs, dumpMs, planMs, applyMs: lap() };
      const failures = refused.filter((f) => !f.error.is('ENODEV'));
      if (failures.length < refused.length) this.again ??= trigger;
      report.changes = changes.length - failures.length;
      report.failures = failures.length;
      if (changes.length) {
        const adds = changes.filter((c) => c.op === 'add').length;
        m?.fdbChanges.inc({ op: 'add' }, adds);
        m?.fdbChanges.inc({ op: 'del' }, changes.length - adds);
        this.o.log.info(trigger === 'resync' ? 'fdb drift repaired' : 'fdb updated', {
          trigger, added: adds, removed: changes.length - adds,
          changes: changes.slice(0, MAX_LOGGED_CHANGES).map((c) => `${c.op} vni ${c.vni} ${c.mac} dst ${c.dst}`),
        });
      }
      if (failures.length) {
        m?.fdbFailures.inc(failures.length);
        this.o.log.warn('kernel refused fdb changes', { count: failures.length, errors: failures.slice(0, MAX_LOGGED_CHANGES).map((f) => f.error.message) });
      }
      report.removed = await this.collectEmptySegments(links);
      this.updateGauges(actual, want.segments, listed.members.length, failures.length, report.removed);
      if (failures.length) throw new Error(`${failures.length} fdb changes refused by the kernel`);
      this.lastSuccessAt = this.now();
      m?.lastSuccess.set(this.lastSuccessAt / 1000);
    } catch (e) {
      report.ok = false;
      report.error = (e as Error).message;
      this.errors++;
      m?.reconcileErrors.inc();
      this.o.log.warn('reconcile failed', { trigger, error: report.error });
    }
    report.durationMs = Number(process.hrtime.bigint() - t0) / 1e6;
    m?.reconcileDuration.observe(report.durationMs / 1000);
    this.o.log.debug?.('reconciled', { ...report });
    return report;
  }

  /** Bad entries are logged when first seen (and again if they change), never each run. */
  private reportProblems(problems: MemberProblem[]): void {
    const seen = new Map<string, string>();
    for (const p of problems) {
      seen.set(p.where, p.reason);
      if (this.reported.get(p.where) === p.reason) continue;
      this.o.metrics?.registryErrors.inc();
      this.o.log.warn('skipping bad registry entry', { entry: p.where, reason: p.reason });
    }
    this.reported = seen;
    this.o.metrics?.registryBadEntries.set(seen.size);
  }

  private get owner(): SegmentOwner { return { local: this.o.localVtep, port: this.o.port }; }

  /** The grace rule's memory: since when each segment has had no leg (shared with the calls this agent serves). */
  private grace(busy?: Set<number>): Grace {
    return { graceMs: this.o.graceMs, emptySince: this.emptySince, now: this.now(), busy };
  }

  /**
   * Removes segments empty for the grace period (the rule: segmentsToRemove), checked once
   * more under the node lock; wakes up when the next one expires.
   */
  private async collectEmptySegments(links: LinkInfo[]): Promise<number[]> {
    let { remove, nextCheck } = segmentsToRemove(links, this.owner, this.grace());
    // ADDs in flight are read from the state files only when something is due to go.
    const busy = remove.size && this.o.busyVnis ? this.o.busyVnis() : undefined;
    if (busy?.size) ({ remove, nextCheck } = segmentsToRemove(links, this.owner, this.grace(busy)));
    const removed: number[] = [];
    if (remove.size) {
      const run = (): Promise<number[]> => removeLegsAndEmptySegments(this.k, { hostIfs: [], vnis: [...remove.keys()], owner: this.owner, grace: this.grace(busy) })
        .then((r) => r.removed);
      try {
        removed.push(...(await (this.o.exclusive ? this.o.exclusive(run) : run())));
      } catch (e) {
        // Node lock busy (a call holds it) or the kernel said no: try again shortly.
        this.o.log.warn('segment removal postponed', { vnis: [...remove.keys()], error: (e as Error).message });
        nextCheck = Math.min(nextCheck ?? Infinity, this.now() + 250);
      }
    }
    for (const vni of removed) {
      this.o.metrics?.segmentsRemoved.inc();
      this.o.log.info('segment removed: no local leg for the grace period', { vni, graceSeconds: this.o.graceMs / 1000 });
    }
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.wakeAt(nextCheck);
    return removed;
  }

  /** A grace run at time t (the earliest asked for wins). */
  private wakeAt(t: number | undefined): void {
    if (t === undefined || this.stopped || (this.graceTimer && this.graceWake! <= t)) return;
    clearTimeout(this.graceTimer);
    this.graceWake = t;
    this.graceTimer = setTimeout(() => { this.graceTimer = undefined; this.kick('grace', 0); }, Math.max(0, t - this.now()) + 5);
  }

  /**
   * The writer of node-wide state for the CNI calls this agent serves: their ADDs have the
   * FDB written by this agent's own run (before they reply), their teardowns leave emptied
   * segments to this agent's grace rule.
   */
  nodeWriter(): NodeWriter {
    return {
      by: 'agent',
      converge: async (_k, { fresh }) => {
        // Segments that were there before this ADD are converged by this agent's runs already.
        if (fresh.size === 0) return { changes: 0, problems: [] };
        await this.reconcile('manual');
        return { changes: this.last?.changes ?? 0, problems: this.last?.ok === false ? [this.last.error ?? 'reconcile failed'] : [] };
      },
      grace: () => this.grace(),
      // The teardown started the segments' grace clocks (this agent's memory): wake up when one ends.
      legsRemoved: (r) => this.wakeAt(r.nextCheck),
    };
  }

  private updateGauges(actual: Map<number, SegmentState>, want: ReturnType<typeof desiredState>['segments'], members: number, failed: number, removed: number[]): void {
    let legs = 0;
    let flood = 0;
    let macs = 0;
    for (const [vni, seg] of actual) {
      if (removed.includes(vni)) continue;
      legs += seg.legs.length;
      const w = want.get(vni);
      if (w && seg.vxlanIndex !== undefined) { flood += w.flood.size; macs += w.macs.size; }
    }
    this.segments = actual.size - removed.length;
    const m = this.o.metrics;
    if (!m) return;
    m.segments.set(this.segments);
    m.legs.set(legs);
    m.members.set(members);
    // After a clean apply the kernel equals the desired state; refused changes make it approximate.
    m.fdbEntries.set({ type: 'flood' }, flood);
    m.fdbEntries.set({ type: 'mac' }, Math.max(0, macs - failed));
  }

  /** Healthy once a run succeeded recently and the last run did not fail. */
  health(): Health {
    const maxAge = Math.max(3 * this.o.resyncMs, 30_000);
    const age = this.lastSuccessAt === undefined ? undefined : this.now() - this.lastSuccessAt;
    const ok = !!this.last?.ok && age !== undefined && age <= maxAge;
    return {
      ok,
      detail: {
        vtep: this.o.localVtep, runs: this.runs, errors: this.errors, segments: this.segments,
        lastReconcileMs: this.last?.durationMs, lastSuccessAgeMs: age,
        ...(this.last?.error ? { lastError: this.last.error } : {}),
        ...(this.last === undefined ? { reason: 'no reconcile finished yet' } : {}),
      },
    };
  }
}
