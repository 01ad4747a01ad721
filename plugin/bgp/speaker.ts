// One interface for the node speaker, whatever it is: read what it has, plan the difference to
// the desired state (pure), apply the plan. Implementations: gobgp.ts (a gobgpd driven through
// its `gobgp` CLI) and cilium.ts (Cilium BGP resources rendered to files).
import type { DesiredBgp } from './desired';

export interface SpeakerOp { why: string; [k: string]: unknown }

export interface SyncReport {
  ops: string[];                 // what was (or, with dryRun, would be) done, in order
  applied: boolean;
  neighbors: number;
}

export interface Speaker {
  readonly kind: 'gobgp' | 'cilium';
  /** Reads the actual state, plans, applies (unless dryRun). Throws when the speaker cannot be read. */
  sync(desired: DesiredBgp, opts?: { dryRun?: boolean }): Promise<SyncReport>;
  /** Session view for status/tests (establishedAt: epoch seconds); absent when the speaker cannot tell. */
  sessions?(): Promise<{ address: string; asn: number; established: boolean; establishedAt?: number }[]>;
}
