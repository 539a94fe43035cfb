// Trust in a run's workers, as adaptive replication uses it (BOINC): how many of a worker's
// checked results agreed with another worker's, how many strikes it has, and from these the
// chance that its next task is checked. Keyed by identity (the browser id a page keeps, else the
// socket's worker id), so that a reload keeps its record. Deciding what agrees is replication.ts's.

export interface TrustPolicy {
  /** Chance that a new worker's task is checked. */
  newProbability: number;
  /** Least chance, however long a worker's record (a trusted worker is still checked now and then). */
  floor: number;
  /** Each agreement since the last strike multiplies the chance by this. */
  decay: number;
  /** Tasks checked without fail after a strike, before the chance falls again. */
  watchAfterStrike: number;
  /** Strikes that ban a worker from the run. */
  strikesToBan: number;
}

/**
 * From 0.3 for a new worker down to 0.02 after about 10 agreements (0.3 · 0.75^10 ≈ 0.017);
 * after a strike every task is checked for the next 3, so a worker that keeps sending wrong
 * results meets its second and third strike on its next tasks.
 */
export const DEFAULT_TRUST_POLICY: TrustPolicy = { newProbability: 0.3, floor: 0.02, decay: 0.75, watchAfterStrike: 3, strikesToBan: 3 };

export interface TrustRecord {
  /** The browser id, or `worker:<id>` for a worker that sent none. */
  key: string;
  /** The worker id it had most recently. */
  workerId: string;
  backend: string;
  /** Checked results that agreed with the quorum. */
  agreements: number;
  /** Agreements since the last strike (the chance of a check falls with these). */
  sinceStrike: number;
  strikes: number;
  /** Why each strike was given, newest last. */
  reasons: string[];
}

/** The trust records of one run. */
export class TrustBook {
  private readonly records = new Map<string, TrustRecord>();

  constructor(private readonly policy: () => TrustPolicy) {}

  record(key: string, workerId: string, backend: string): TrustRecord {
    let r = this.records.get(key);
    if (!r) this.records.set(key, (r = { key, workerId, backend, agreements: 0, sinceStrike: 0, strikes: 0, reasons: [] }));
    r.workerId = workerId;
    r.backend = backend;
    return r;
  }

  get(key: string): TrustRecord | undefined {
    return this.records.get(key);
  }

  /** The chance that this worker's next task is checked. */
  probability(key: string): number {
    const p = this.policy();
    const r = this.records.get(key);
    if (!r) return Math.min(1, p.newProbability);
    if (r.strikes > 0 && r.sinceStrike < p.watchAfterStrike) return 1;
    const since = r.strikes > 0 ? r.sinceStrike - p.watchAfterStrike : r.sinceStrike;
    return Math.min(1, Math.max(p.floor, p.newProbability * p.decay ** since));
  }

  agree(key: string): void {
    const r = this.records.get(key);
    if (!r) return;
    r.agreements++;
    r.sinceStrike++;
  }

  /** Gives a strike; true when it reaches the policy's ban. */
  strike(key: string, reason: string): boolean {
    const r = this.records.get(key);
    if (!r) return false;
    r.strikes++;
    r.sinceStrike = 0;
    r.reasons.push(reason);
    if (r.reasons.length > 10) r.reasons.shift();
    return r.strikes >= this.policy().strikesToBan;
  }

  /** Clears the strikes (a lifted ban): the worker starts over as new. */
  forgive(key: string): void {
    const r = this.records.get(key);
    if (!r) return;
    r.strikes = 0;
    r.sinceStrike = 0;
  }

  list(): TrustRecord[] {
    return [...this.records.values()];
  }
}
