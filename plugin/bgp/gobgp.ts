// The gobgpd driver: reads the speaker through the `gobgp` CLI (JSON output), applies the plan of
// gobgp-plan.ts with the same CLI. The CLI is gobgpd's own API client (gRPC), run as a program.
import { execFile } from 'child_process';
import type { BgpSyncConf } from './config';
import type { DesiredBgp } from './desired';
import { GobgpActual, GobgpAssignment, gobgpDesired, GobgpNeighbor, GobgpOp, GobgpStatement, planGobgp } from './gobgp-plan';
import type { Speaker, SyncReport } from './speaker';
import type { Log } from '../log';

export class SpeakerError extends Error {}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const ESTABLISHED = 6; // apipb.PeerState_ESTABLISHED
const ACTION: Record<number, 'accept' | 'reject'> = { 1: 'accept', 2: 'reject' };

export class GobgpSpeaker implements Speaker {
  readonly kind = 'gobgp';
  constructor(private readonly conf: Pick<BgpSyncConf, 'api' | 'gobgpBin'>, private readonly log?: Log, private readonly timeoutMs = 10_000) {}

  /** Runs `gobgp -u HOST -p PORT ARGV...`; rejects with the CLI's own message. */
  run(argv: string[], json = false): Promise<string> {
    const full = ['-u', this.conf.api.host, '-p', String(this.conf.api.port), ...(json ? ['-j'] : []), ...argv];
    return new Promise((resolve, reject) => {
      execFile(this.conf.gobgpBin, full, { timeout: this.timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) {
          const msg = `${stderr || stdout || err.message}`.trim().split('\n')[0];
          reject(new SpeakerError(`gobgp ${argv.join(' ')}: ${msg}`));
        } else resolve(stdout);
      });
    });
  }

  private async json(argv: string[]): Promise<unknown> {
    const out = (await this.run(argv, true)).trim();
    if (out === '' || out === 'null') return undefined;
    try {
      return JSON.parse(out);
    } catch {
      throw new SpeakerError(`gobgp ${argv.join(' ')}: unexpected output "${out.slice(0, 80)}"`);
    }
  }

  async neighbors(): Promise<GobgpNeighbor[]> {
    return arr(await this.json(['neighbor'])).filter(isObj).map((p) => {
      const conf = isObj(p.conf) ? p.conf : {};
      const state = isObj(p.state) ? p.state : {};
      const uptime = isObj(p.timers) && isObj(p.timers.state) && isObj(p.timers.state.uptime) ? Number(p.timers.state.uptime.seconds) : undefined;
      const established = state.session_state === ESTABLISHED;
      return {
        address: String(conf.neighbor_address ?? state.neighbor_address ?? ''),
        asn: Number(conf.peer_asn ?? state.peer_asn ?? 0),
        established,
        ...(established && uptime ? { establishedAt: uptime } : {}),
      };
    });
  }

  async read(): Promise<GobgpActual> {
    const [neighbors, nsets, psets, policies, statements, assignment] = await Promise.all([
      this.neighbors(),
      this.json(['policy', 'neighbor']),
      this.json(['policy', 'prefix']),
      this.json(['policy']),
      this.json(['policy', 'statement']),
      this.json(['global', 'policy', 'import']),
    ]);
    const neighborSets = new Map<string, string[]>();
    for (const s of arr(nsets).filter(isObj)) neighborSets.set(String(s.name), arr(s.list).map((a) => String(a).replace(/\/(32|128)$/, '')));
    const prefixSets = new Map<string, string[]>();
    for (const s of arr(psets).filter(isObj)) {
      prefixSets.set(String(s.name), arr(s.prefixes).filter(isObj).map((p) => `${String(p.ip_prefix)} ${Number(p.mask_length_min)}..${Number(p.mask_length_max)}`));
    }
    const stmt = (s: Json): GobgpStatement => {
      const c = isObj(s.conditions) ? s.conditions : {};
      const a = isObj(s.actions) ? s.actions : {};
      return {
        name: String(s.name),
        neighborSet: isObj(c.neighbor_set) ? String(c.neighbor_set.name) : '',
        ...(isObj(c.prefix_set) ? { prefixSet: String(c.prefix_set.name) } : {}),
        action: ACTION[Number(a.route_action)] ?? 'none',
      };
    };
    const policyMap = new Map<string, GobgpStatement[]>();
    for (const p of arr(policies).filter(isObj)) policyMap.set(String(p.name), arr(p.statements).filter(isObj).map(stmt));
    let importAssignment: GobgpAssignment | undefined;
    if (isObj(assignment)) {
      importAssignment = {
        policies: arr(assignment.policies).filter(isObj).map((p) => String(p.name)),
        defaultAction: ACTION[Number(assignment.default_action)] ?? 'accept',
      };
    }
    return { neighbors, neighborSets, prefixSets, policies: policyMap, statements: arr(statements).filter(isObj).map((s) => String(s.name)), importAssignment };
  }

  async apply(ops: GobgpOp[]): Promise<void> {
    for (const o of ops) {
      this.log?.debug('gobgp', { op: o.why, argv: o.argv });
      await this.run(o.argv);
    }
  }

  async sync(desired: DesiredBgp, opts: { dryRun?: boolean } = {}): Promise<SyncReport> {
    const actual = await this.read();
    const ops = planGobgp(gobgpDesired(desired), actual);
    if (!opts.dryRun) await this.apply(ops);
    return { ops: ops.map((o) => `${o.why}: gobgp ${o.argv.join(' ')}`), applied: !opts.dryRun, neighbors: desired.neighbors.length };
  }

  async sessions(): Promise<{ address: string; asn: number; established: boolean; establishedAt?: number }[]> {
    return this.neighbors();
  }
}
