// Who writes node-wide state for a CNI call: the FDB/flood lists of the segments and the
// removal of segments left without legs. A call the agent serves hands both to the agent
// (its reconciler writes the FDB, its grace rule removes segments); a call run in-process
// on a node without an agent does the same work itself, once, through the same functions
// (desiredState + planFdb; segmentsToRemove with no grace). runCni is given one of the two;
// it never asks where it runs.
import type { Member } from '../registry/member';
import { Grace, noGrace, Removal } from '../segment';
import { convergeSegments, SegmentKernel } from './reconciler';

export interface Converged { changes: number; problems: string[] }

/** Members of some VNIs (the file registry a call registers in). */
export interface VniMembers { list(vnis: Iterable<number>): Promise<{ members: Member[] }> }

export interface NodeWriter {
  readonly by: 'agent' | 'in-process';
  /**
   * After an ADD plugged its legs in (and registered them): the FDB of the segments of vnis
   * as the agent's rule wants it, written before this resolves, so the pod can reach its
   * peers when ADD returns. fresh: the VNIs whose segments this ADD created or replaced (the
   * agent keeps every other segment converged already, so it only runs for fresh ones; the
   * in-process writer, with nobody keeping them, refreshes them all). members: where the call
   * registered them (the in-process writer reads remote members there; none in Kubernetes
   * mode, where the agent alone knows them).
   */
  converge(k: SegmentKernel, o: { vnis: Set<number>; fresh: Set<number>; vtep: string; members?: VniMembers }): Promise<Converged>;
  /** The grace the segment-removal rule applies to segments a teardown leaves empty. */
  grace(): Grace;
  /** Told after the rule ran on a teardown (DEL, GC, a failed ADD): what it removed, when the next empty segment is due. */
  legsRemoved(r: Removal): void;
}

/** No agent: this process writes the FDB once and removes emptied segments at once (see noGrace). */
export const inProcessWriter: NodeWriter = {
  by: 'in-process',
  async converge(k, { vnis, vtep, members }) {
    if (!members) return { changes: 0, problems: [] };
    const r = await convergeSegments(k, (await members.list(vnis)).members, vtep, vnis);
    return { changes: r.changes, problems: [...r.problems.map((p) => `${p.where}: ${p.reason}`), ...r.refused.map((f) => `${f.change.op} ${f.change.mac} ${f.change.dst}: ${f.error.message}`)] };
  },
  grace: noGrace,
  legsRemoved: () => undefined,
};
