// The agent's Prometheus metrics, on a registry of its own (never prom-client's
// global one, so tests and a future second component cannot collide).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly segments: Gauge;
  readonly legs: Gauge;
  readonly members: Gauge;
  readonly fdbEntries: Gauge<'type'>;
  readonly fdbChanges: Counter<'op'>;
  readonly fdbFailures: Counter;
  readonly reconcileRuns: Counter;
  readonly reconcileErrors: Counter;
  readonly reconcileDuration: Histogram;
  readonly lastSuccess: Gauge;
  readonly registryErrors: Counter;
  readonly registryBadEntries: Gauge;
  readonly segmentsRemoved: Counter;
  readonly securityDrops: Counter<'network' | 'pod' | 'interface' | 'reason'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.segments = new Gauge({ name: 'podlegs_segments', help: 'Segments (bridge + VXLAN device per VNI) on this node', registers });
    this.legs = new Gauge({ name: 'podlegs_legs', help: 'Local legs: ports of the segment bridges other than their VXLAN device', registers });
    this.members = new Gauge({ name: 'podlegs_members', help: 'Valid members listed by the membership source, all nodes', registers });
    this.fdbEntries = new Gauge({ name: 'podlegs_fdb_entries', help: 'FDB entries on the VXLAN devices: flood (all-zero MAC, one per remote VTEP) and mac (remote member)', labelNames: ['type'], registers });
    this.fdbChanges = new Counter({ name: 'podlegs_fdb_changes_total', help: 'FDB entries added or removed by the agent', labelNames: ['op'], registers });
    this.fdbFailures = new Counter({ name: 'podlegs_fdb_failures_total', help: 'FDB changes the kernel refused', registers });
    this.reconcileRuns = new Counter({ name: 'podlegs_reconcile_runs_total', help: 'Reconcile runs (event-driven and periodic)', registers });
    this.reconcileErrors = new Counter({ name: 'podlegs_reconcile_errors_total', help: 'Reconcile runs that failed or left changes unapplied', registers });
    this.reconcileDuration = new Histogram({
      name: 'podlegs_reconcile_duration_seconds', help: 'Duration of a reconcile run', registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.lastSuccess = new Gauge({ name: 'podlegs_last_reconcile_success_timestamp_seconds', help: 'Unix time of the last successful reconcile', registers });
    this.registryErrors = new Counter({ name: 'podlegs_registry_errors_total', help: 'Membership source failures and newly seen bad registry entries', registers });
    this.registryBadEntries = new Gauge({ name: 'podlegs_registry_bad_entries', help: 'Registry entries currently skipped as corrupt or foreign', registers });
    this.segmentsRemoved = new Counter({ name: 'podlegs_segments_removed_total', help: 'Segments removed after their grace period without local legs', registers });
    this.securityDrops = new Counter({
      name: 'podlegs_leg_security_drops_total', help: 'Frames a leg guard (security mode "enforce") dropped: source MAC, ARP sender or ND address not allowed',
      labelNames: ['network', 'pod', 'interface', 'reason'], registers,
    });
    this.fdbEntries.set({ type: 'flood' }, 0);
    this.fdbEntries.set({ type: 'mac' }, 0);
    this.fdbChanges.inc({ op: 'add' }, 0);
    this.fdbChanges.inc({ op: 'del' }, 0);
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
