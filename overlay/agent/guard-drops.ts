// Drop counters of the leg guards on this node: the clsact qdisc drops of each guarded device
// (the guard is that hook's only filter, so its drops are the guard's; leg-guard.ts says why
// there is no finer split). Read in one qdisc dump; exported as a Prometheus counter and
// reported once per leg and quiet period to a callback (the Kubernetes side posts an Event).
import { Kernel } from '../kernel/kernel';
import type { AgentMetrics } from './metrics';

export interface GuardedDevice {
  network: string;
  pod: string;        // namespace/name in Kubernetes, else the container ID
  interface: string;  // the leg inside the pod (a trunk VLAN: "<leg>.<vid>")
  hostIf: string;     // the device the guard is on
  podRef?: { namespace: string; name: string };
}

export interface GuardDropRow extends GuardedDevice { drops: number }

/** The only reason the kernel lets us count (see leg-guard.ts): a source MAC, ARP sender or ND address not allowed. */
export const DROP_REASON = 'spoofed_source';

export class GuardDrops {
  private readonly last = new Map<string, { drops: number; labels: Record<'network' | 'pod' | 'interface' | 'reason', string> }>(); // by hostIf
  private readonly lastWarned = new Map<string, number>(); // hostIf → Date.now() of the last report

  /** k: a netlink connection of the guard counters' own (not shared with the reconciler: dumps would interleave). */
  constructor(
    private readonly k: Kernel,
    private readonly devices: () => GuardedDevice[],
    private readonly o: { metrics?: AgentMetrics; onDrops?: (d: GuardDropRow, newDrops: number) => void; quietMs?: number; now?: () => number } = {},
  ) {}

  /** Current drops of every guarded device (devices already gone are left out). */
  async read(): Promise<GuardDropRow[]> {
    const want = this.devices();
    if (want.length === 0) return [];
    // One dump at a time: a netlink socket cannot interleave two (the kernel answers EIO/EBUSY).
    const links = await this.k.links();
    const drops = await this.k.clsactDrops();
    const byName = new Map(links.map((l) => [l.name, l.index]));
    const out: GuardDropRow[] = [];
    for (const d of want) {
      const index = byName.get(d.hostIf);
      if (index !== undefined) out.push({ ...d, drops: drops.get(index) ?? 0 });
    }
    return out;
  }

  private polling: Promise<GuardDropRow[]> | undefined;

  /** Reads the counters, adds what is new to the metric, reports rising legs (rate-limited). Calls in flight are shared. */
  poll(): Promise<GuardDropRow[]> {
    this.polling ??= this.pollOnce().finally(() => { this.polling = undefined; });
    return this.polling;
  }

  private async pollOnce(): Promise<GuardDropRow[]> {
    const rows = await this.read();
    const now = (this.o.now ?? Date.now)();
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.hostIf);
      const before = this.last.get(r.hostIf)?.drops ?? 0;
      const fresh = r.drops >= before ? r.drops - before : r.drops; // a re-created device starts at 0
      const labels = { network: r.network, pod: r.pod, interface: r.interface, reason: DROP_REASON };
      this.last.set(r.hostIf, { drops: r.drops, labels });
      this.o.metrics?.securityDrops.inc(labels, fresh);
      if (fresh > 0) {
        const warned = this.lastWarned.get(r.hostIf);
        if (warned === undefined || now - warned >= (this.o.quietMs ?? 600_000)) {
          this.lastWarned.set(r.hostIf, now);
          this.o.onDrops?.(r, fresh);
        }
      }
    }
    for (const [hostIf, { labels }] of [...this.last]) {
      if (seen.has(hostIf)) continue;
      this.o.metrics?.securityDrops.remove(labels); // the leg is gone: so is its series
      this.last.delete(hostIf);
      this.lastWarned.delete(hostIf);
    }
    return rows;
  }
}
