// The coordinator's verification of volunteers' work: per run, the trust records (trust.ts), the
// bans (bans.ts), the seeded draw of which tasks are checked, the plausible-loss window
// (loss-window.ts), and the counts the admin page shows. The round mode decides how a checked task
// is handed out and folded (rounds/sync-rounds.ts); the scheduler turns a ban into a disconnect.
import { createRng, type Rng } from '../../shared/rng.ts';
import type { UpdateCoding } from '../../shared/update-codec.ts';
import type { WorkerEntry } from '../workers.ts';
import { BanList, type Ban } from './bans.ts';
import { LossWindow } from './loss-window.ts';
import { AGREEMENT_TOLERANCE } from './replication.ts';
import { DEFAULT_TRUST_POLICY, TrustBook, type TrustPolicy, type TrustRecord } from './trust.ts';

export interface VerificationOptions {
  policy?: Partial<TrustPolicy>;
  /** Agreement tolerance by coding (default AGREEMENT_TOLERANCE). */
  tolerance?: Partial<Record<UpdateCoding['kind'], number>>;
  /** Milliseconds since the epoch, for the time a ban was given. */
  now?: () => number;
}

/** What the spot checks of one run have done. */
export interface CheckStats {
  /** Tasks chosen for a check. */
  checks: number;
  /** Checked tasks whose results agreed (first or second comparison). */
  agreed: number;
  /** Comparisons that disagreed (each sends the task to a third worker). */
  disagreements: number;
  /** Three results, no two agreeing: none folded. */
  inconclusive: number;
  /** Quorums left unsettled when their round closed, or with no other worker to ask: none folded. */
  unsettled: number;
  strikes: number;
  /** Examples computed again for checks (the replication overhead). */
  replicaExamples: number;
  /** Largest relative difference between two results that agreed. */
  maxAgreeingDifference: number;
  /** Smallest relative difference between two results that disagreed (null: none yet). */
  minDisagreeingDifference: number | null;
}

export interface TrustRow extends TrustRecord {
  /** Chance its next task is checked. */
  probability: number;
  banned: boolean;
}

export interface TrustReport {
  runId: string;
  policy: TrustPolicy;
  tolerance: Partial<Record<UpdateCoding['kind'], number>>;
  stats: CheckStats;
  workers: TrustRow[];
  bans: Ban[];
}

export type BanListener = (ban: Ban) => void;

interface RunVerification {
  trust: TrustBook;
  /** Made at the first draw, from the run's seed: the same run draws the same checks. */
  rng?: Rng;
  losses: LossWindow;
  stats: CheckStats;
}

/** The identity a worker's trust and bans are kept under: its page's browser id, else its worker id. */
export function identityOf(w: { id: string; hello: { browserId?: string } }): string {
  return w.hello.browserId ?? `worker:${w.id}`;
}

export class Verification {
  policy: TrustPolicy;
  tolerance: Partial<Record<UpdateCoding['kind'], number>>;
  readonly bans = new BanList();
  private readonly runs = new Map<string, RunVerification>();
  private readonly banListeners: BanListener[] = [];
  private readonly changeListeners: ((runId: string) => void)[] = [];
  private readonly now: () => number;

  /** `false`: no task is checked (the loss window and bans still work); the coordinator's default is on (server/app.ts). */
  constructor(opts: VerificationOptions | false = {}) {
    this.policy = opts === false ? { ...DEFAULT_TRUST_POLICY, newProbability: 0, floor: 0 } : { ...DEFAULT_TRUST_POLICY, ...opts.policy };
    this.tolerance = { ...AGREEMENT_TOLERANCE, ...(opts === false ? {} : opts.tolerance) };
    this.now = (opts === false ? undefined : opts.now) ?? Date.now;
  }

  private of(runId: string): RunVerification {
    let r = this.runs.get(runId);
    if (!r) {
      r = {
        trust: new TrustBook(() => this.policy),
        losses: new LossWindow(),
        stats: { checks: 0, agreed: 0, disagreements: 0, inconclusive: 0, unsettled: 0, strikes: 0, replicaExamples: 0, maxAgreeingDifference: 0, minDisagreeingDifference: null },
      };
      this.runs.set(runId, r);
    }
    return r;
  }

  /** The run's counts (made on first use). */
  stats(runId: string): CheckStats {
    return this.of(runId).stats;
  }

  /** Whether this worker's task is checked: drawn from the run's seeded stream at its trust's chance. */
  shouldCheck(runId: string, seed: number, w: WorkerEntry): boolean {
    const v = this.of(runId);
    const key = identityOf(w);
    v.trust.record(key, w.id, w.hello.backend);
    v.rng ??= createRng((seed ^ 0x5eedc4ec) >>> 0);
    return v.rng.float() < v.trust.probability(key);
  }

  /** Why a result's loss is implausible for the run, or null. */
  lossRefusal(runId: string, loss: number): string | null {
    return this.of(runId).losses.check(loss);
  }

  /** A result's loss was used. */
  lossUsed(runId: string, loss: number): void {
    this.of(runId).losses.observe(loss);
  }

  agree(runId: string, key: string, workerId: string, backend: string): void {
    const t = this.of(runId).trust;
    t.record(key, workerId, backend);
    t.agree(key);
    this.changed(runId);
  }

  /** Gives a strike; returns the ban when it is the one that bans (listeners hear of it). */
  strike(runId: string, key: string, workerId: string, backend: string, reason: string): Ban | null {
    const v = this.of(runId);
    v.trust.record(key, workerId, backend);
    v.stats.strikes++;
    const bans = v.trust.strike(key, reason);
    let ban: Ban | null = null;
    if (bans && !this.bans.get(runId, key)) {
      const record = v.trust.get(key)!;
      ban = { runId, key, workerId, reason: `banned after ${record.strikes} strikes; last: ${reason}`, at: this.now() };
      this.bans.add(ban);
      for (const l of this.banListeners) l(ban);
    }
    this.changed(runId);
    return ban;
  }

  /** The ban that keeps this identity out of the run, if any. */
  banOf(runId: string, key: string): Ban | undefined {
    return this.bans.get(runId, key);
  }

  /** Lifts a ban and clears the strikes: the worker may join again as a new one. */
  lift(runId: string, key: string): boolean {
    const lifted = this.bans.lift(runId, key);
    this.of(runId).trust.forgive(key);
    if (lifted) this.changed(runId);
    return lifted;
  }

  onBan(fn: BanListener): void {
    this.banListeners.push(fn);
  }

  /** Called when a run's strikes or bans change (the store keeps its bans). */
  onChange(fn: (runId: string) => void): void {
    this.changeListeners.push(fn);
  }

  private changed(runId: string): void {
    for (const l of this.changeListeners) l(runId);
  }

  report(runId: string): TrustReport {
    const v = this.of(runId);
    const bans = this.bans.of(runId);
    const workers = v.trust.list().map((r) => ({ ...r, reasons: [...r.reasons], probability: v.trust.probability(r.key), banned: this.bans.get(runId, r.key) !== undefined }));
    return { runId, policy: { ...this.policy }, tolerance: { ...this.tolerance }, stats: { ...v.stats }, workers, bans };
  }

  forgetRun(runId: string): void {
    this.runs.delete(runId);
    this.bans.forgetRun(runId);
  }
}
