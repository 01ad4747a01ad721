// The node agent loop: reconcile on every membership event (debounced) and on
// a periodic full resync that repairs drift.
import { Kernel } from '../kernel/kernel';
import { MembershipSource } from '../registry/member';
import { apply, plan, readActual } from './reconciler';

export interface AgentLog { info(m: string, meta?: Record<string, unknown>): void; warn(m: string, meta?: Record<string, unknown>): void }
export interface AgentOptions { localVtep: string; resyncMs: number; debounceMs: number; log: AgentLog }

export class Agent {
  private running = false;
  private again = false;
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private stopWatch?: () => void;
  runs = 0;
  errors = 0;

  constructor(private readonly k: Kernel, private readonly source: MembershipSource, private readonly o: AgentOptions) {}

  start(): void {
    this.stopWatch = this.source.watch(() => this.kick());
    this.timer = setInterval(() => this.kick(0), this.o.resyncMs);
    this.kick(0);
  }

  stop(): void {
    this.stopWatch?.();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }

  /** Schedules a reconcile; bursts of events collapse into one run. */
  kick(delay = this.o.debounceMs): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reconcile(), delay);
  }

  async reconcile(): Promise<void> {
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      do {
        this.again = false;
        const { members, problems } = await this.source.list();
        for (const p of problems) this.o.log.warn('skipping bad registry entry', { entry: p.where, reason: p.reason });
        const ops = plan(await readActual(this.k), members, this.o.localVtep);
        await apply(this.k, ops);
        this.runs++;
        if (ops.length) this.o.log.info('flood lists updated', { ops: ops.map((x) => `${x.op} vni ${x.vni} ${x.dst}`) });
      } while (this.again);
    } catch (e) {
      this.errors++;
      this.o.log.warn('reconcile failed', { error: (e as Error).message });
    } finally {
      this.running = false;
    }
  }
}
