// How running runs share the grid's workers, as BOINC splits a volunteer's machine between
// projects: each run's weight (`share` in its spec) and minimum (`sync.minWorkers`) give it a
// number of workers to hold, and what each run has received so far decides who holds the odd
// worker when the numbers do not divide. This file only decides; the scheduler moves workers,
// and only at round boundaries (a worker with no task out).
//
// What a run receives is measured in worker-seconds: workers serving it (not paused) × time.
// Not speed × time: a worker's measured speed is in examples/s of one run's model, and two runs'
// models make those figures incomparable (an MLP's examples are far cheaper than a CNN's).
//
// The policy, at any moment, for the N workers not paused:
//  1. Minimums first: running runs, by share (largest first) then age (oldest first), each take
//     their minWorkers while those still fit in N. A run whose minimum does not fit gets none (it
//     could not open a round; holding workers for it would waste them).
//  2. The rest by weight: each served run ideally holds x = max(minWorkers, λ·share) workers,
//     with λ such that the x sum to N (water-filling).
//  3. Whole workers: each run holds ⌊x⌋, and the workers left over go to the runs with the
//     largest fractional part plus debt (worker-seconds owed: ideal received minus received,
//     decaying with a half-life), with a little stickiness so that the odd worker does not
//     change runs at every round. Over time each run's received worker-seconds track x.
//
// @example
// const shares = new GridShares();
// shares.accrue(now, runs, total);               // before any worker changes run or pauses
// const to = shares.choose('run-a', runs, total); // a free worker of run-a: where it should go (null: stay)

/** A running run as the share policy sees it. */
export interface RunDemand {
  id: string;
  /** Its weight (spec.share, > 0). */
  share: number;
  /** Workers it needs before a round opens (spec.sync.minWorkers). */
  minWorkers: number;
  /** Workers serving it now, not paused. */
  workers: number;
}

export interface SharePolicyOptions {
  /** Debt older than this counts half (default 10 minutes): a run is not repaid for ever. */
  halfLifeMs?: number;
  /** Worker-ms of debt worth one whole worker of priority for the odd worker (default 20 s). */
  debtScaleMs?: number;
  /** Priority a run keeps for an odd worker it already holds (in workers; default 0.2). */
  stickiness?: number;
}

/** A run's account: what it has received, and what it is owed. */
export interface ShareAccount {
  /** Worker-ms it has received while running. */
  receivedMs: number;
  /** Worker-ms its share would have given it (minimums included). */
  idealMs: number;
  /** Worker-ms owed (ideal − received), decaying. */
  debtMs: number;
}

/** Checks a share: a positive, finite number. Returns the error message, or null. */
export function shareError(share: unknown): string | null {
  if (typeof share !== 'number' || !Number.isFinite(share) || share <= 0) return `share must be a positive number (got ${JSON.stringify(share)})`;
  if (share > 1e6) return `share must be at most 1000000 (got ${share})`;
  return null;
}

export class GridShares {
  private readonly accounts = new Map<string, ShareAccount>();
  private lastAt: number | undefined;
  private readonly halfLifeMs: number;
  private readonly debtScaleMs: number;
  private readonly stickiness: number;

  constructor(opts: SharePolicyOptions = {}) {
    this.halfLifeMs = opts.halfLifeMs ?? 600_000;
    this.debtScaleMs = opts.debtScaleMs ?? 20_000;
    this.stickiness = opts.stickiness ?? 0.2;
  }

  /** A run's account (zeros for a run never running). */
  account(runId: string): ShareAccount {
    return this.accounts.get(runId) ?? { receivedMs: 0, idealMs: 0, debtMs: 0 };
  }

  /**
   * Books the time since the last call: `runs` and `total` must be as they were during it, so
   * call this before any worker joins, leaves, pauses or changes run, and before a run's state
   * or share changes.
   */
  accrue(now: number, runs: RunDemand[], total: number): void {
    const dt = this.lastAt === undefined ? 0 : Math.max(0, now - this.lastAt);
    this.lastAt = now;
    if (dt === 0) return;
    const decay = Math.pow(0.5, dt / this.halfLifeMs);
    for (const a of this.accounts.values()) a.debtMs *= decay;
    const ideal = idealWorkers(runs, total);
    for (const r of runs) {
      let a = this.accounts.get(r.id);
      if (!a) this.accounts.set(r.id, (a = { receivedMs: 0, idealMs: 0, debtMs: 0 }));
      const owed = (ideal.get(r.id) ?? 0) * dt;
      const got = r.workers * dt;
      a.receivedMs += got;
      a.idealMs += owed;
      a.debtMs += owed - got;
    }
  }

  /** Whole workers each run should hold now (runs left out hold none). */
  targets(runs: RunDemand[], total: number): Map<string, number> {
    const ideal = idealWorkers(runs, total);
    const out = new Map<string, number>();
    let given = 0;
    for (const r of runs) {
      const t = Math.floor((ideal.get(r.id) ?? 0) + 1e-9);
      out.set(r.id, t);
      given += t;
    }
    const served = runs.filter((r) => ideal.has(r.id));
    const key = (r: RunDemand) => {
      const x = ideal.get(r.id)!;
      const t = out.get(r.id)!;
      return x - t + this.account(r.id).debtMs / this.debtScaleMs + (r.workers > t ? this.stickiness : 0);
    };
    const order = served.map((r) => ({ r, k: key(r) })).sort((a, b) => b.k - a.k);
    for (let i = 0; i < total - given && i < order.length; i++) out.set(order[i].r.id, out.get(order[i].r.id)! + 1);
    return out;
  }

  /**
   * Where a free worker now serving `from` (a running run in `runs`, or not: a paused or stopped
   * run, or none) should go: a run's id, or null to stay. `runs` and `total` count the worker
   * where it is now.
   */
  choose(from: string | null, runs: RunDemand[], total: number): string | null {
    if (runs.length === 0) return null;
    const targets = this.targets(runs, total);
    const here = runs.find((r) => r.id === from);
    if (here && here.workers <= (targets.get(here.id) ?? 0)) return null;
    let best: { id: string; gap: number; debt: number } | null = null;
    for (const r of runs) {
      if (r.id === from) continue;
      const gap = (targets.get(r.id) ?? 0) - r.workers;
      if (gap <= 0) continue;
      const debt = this.account(r.id).debtMs;
      if (!best || gap > best.gap || (gap === best.gap && debt > best.debt)) best = { id: r.id, gap, debt };
    }
    if (best || here) return best?.id ?? null;
    // Off any running run, and every run holds its target: the one most owed takes it.
    const served = runs.filter((r) => (targets.get(r.id) ?? 0) > 0);
    if (served.length === 0) return null;
    return served.reduce((a, b) => (this.account(b.id).debtMs > this.account(a.id).debtMs ? b : a)).id;
  }

  /** The run is gone: its account goes too. */
  forget(runId: string): void {
    this.accounts.delete(runId);
  }
}

/**
 * The workers each served run ideally holds, fractional: minimums first (by share, then the
 * order given), the rest in proportion to share. Runs whose minimum does not fit are left out.
 */
export function idealWorkers(runs: RunDemand[], total: number): Map<string, number> {
  const out = new Map<string, number>();
  if (total <= 0) return out;
  const byPriority = runs.map((r, i) => ({ r, i })).sort((a, b) => b.r.share - a.r.share || a.i - b.i);
  const served: RunDemand[] = [];
  let mins = 0;
  for (const { r } of byPriority) {
    if (mins + r.minWorkers > total) continue;
    mins += r.minWorkers;
    served.push(r);
  }
  // Water-filling: runs whose weight alone would give them less than their minimum are held at it.
  const fixed = new Set<string>();
  for (;;) {
    let left = total;
    let weight = 0;
    for (const r of served) {
      if (fixed.has(r.id)) left -= r.minWorkers;
      else weight += r.share;
    }
    const lambda = weight > 0 ? left / weight : 0;
    let changed = false;
    for (const r of served) {
      if (!fixed.has(r.id) && lambda * r.share < r.minWorkers) {
        fixed.add(r.id);
        changed = true;
      }
    }
    if (changed) continue;
    for (const r of served) out.set(r.id, fixed.has(r.id) ? r.minWorkers : lambda * r.share);
    return out;
  }
}
