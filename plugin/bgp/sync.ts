// The bgp-sync loop: on every change of the pod source (and every resyncMs), compute the desired
// state purely, let the speaker read its actual state, and apply the difference. Runs are
// serialized; a change during a run triggers one more run.
import type { BgpSyncConf } from './config';
import { computeDesired, DesiredBgp } from './desired';
import type { PodSource } from './pods';
import type { Speaker, SyncReport } from './speaker';
import type { Log } from '../log';

export interface RunReport extends SyncReport { problems: string[]; ms: number; desired: DesiredBgp }

export class BgpSync {
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private lastProblems = '';
  runs = 0;

  constructor(private readonly conf: BgpSyncConf, private readonly source: PodSource, private readonly speaker: Speaker,
    private readonly log: Log, private readonly debounceMs = 10) {}

  /** One full pass. Throws when the pod source or the speaker cannot be read (nothing applied then). */
  async reconcile(opts: { dryRun?: boolean } = {}): Promise<RunReport> {
    const t0 = Date.now();
    const pods = await this.source.list();
    const desired = computeDesired(this.conf, pods);
    const report = await this.speaker.sync(desired, opts);
    this.runs++;
    const problems = desired.problems.map((p) => p.message);
    const key = problems.join('\n');
    if (key !== this.lastProblems) {
      for (const p of problems) this.log.warn('pod not peered', { problem: p });
      this.lastProblems = key;
    }
    const ms = Date.now() - t0;
    if (report.ops.length) {
      this.log.info(opts.dryRun ? 'would apply' : 'applied', { speaker: this.speaker.kind, ops: report.ops, ms, neighbors: desired.neighbors.map((n) => `${n.address} AS${n.asn} ${n.selector} ${n.pod}`) });
    }
    return { ...report, problems, ms, desired };
  }

  start(): void {
    this.unwatch = this.source.watch(() => this.kick());
    this.timer = setInterval(() => this.kick(), this.conf.resyncMs);
    this.kick();
  }

  /** Schedules a run soon; coalesces bursts (an ADD writes its state file several times). */
  kick(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (this.running) {
        this.again = true;
        return;
      }
      this.running = this.loop().finally(() => { this.running = undefined; });
    }, this.debounceMs);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.reconcile();
      } catch (e) {
        this.log.error('sync failed; retrying at the next change or resync', { error: (e as Error).message });
      }
    } while (this.again);
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    await this.running;
  }
}
