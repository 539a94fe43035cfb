// The batch policy of synchronous rounds: how many examples each worker's task holds, how many a
// round holds, and how the learning rate follows the round's batch. Pure functions of the spec and
// the coordinator's measured speeds, so tests and the simulator check them without a clock.
//
// Policy (docs/architecture.md, "Batch policy"): a round is sync.targetRoundMs of every worker's
// measured speed, so the tasks finish together and adding a worker adds its speed; the round's
// batch is capped at sync.maxBatch (past a model's critical batch, bigger steps waste examples),
// in which case the round is shorter. With globalBatch set the batch is fixed and split in
// proportion to speed. A worker whose speed is not measured yet gets a probe task of batchPerTask.
import type { RunSpec } from '../shared/run-spec.ts';

export interface SizedWorker {
  id: string;
  /** Measured examples/s; 0 when not measured yet. */
  speed: number;
  /** Rounds in a row this worker sat out (was ready, got no task); unset: 0. */
  satOut?: number;
}

/**
 * A worker that sat out this many rounds in a row gets its minimum task anyway: its speed was
 * measured on its last tasks only, and a stale, low measurement (a first task that also fetched
 * shards, a tab that was busy) would otherwise keep it out for good.
 */
export const REPROBE_AFTER_ROUNDS = 8;

export interface RoundPlan {
  /** Examples per worker, in the order given; 0: the worker sits this round out. */
  sizes: number[];
  /** How long the round's tasks should take, ms. */
  plannedMs: number;
}

/** Milliseconds of round per worker below which a round does not go: the coordinator receives, checks and folds results one after another. */
export const ROUND_MS_PER_WORKER = 8;

/** Examples of a task too small to be worth a message. */
export function minTaskExamples(spec: RunSpec): number {
  return Math.max(1, Math.ceil(spec.batchPerTask / 4));
}

/** Splits `total` in proportion to `weights`, exactly (largest remainders; ties to the earlier). */
export function splitProportional(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (!(sum > 0)) return splitProportional(total, weights.map(() => 1));
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k].i]++;
  return out;
}

/** Sizes the tasks of a round that opens with these workers. */
export function planRound(spec: RunSpec, workers: SizedWorker[]): RoundPlan {
  const { targetRoundMs, maxBatch } = spec.sync;
  if (spec.sync.taskSizing === 'fixed') {
    const g = spec.globalBatch;
    return { sizes: g === undefined ? workers.map(() => spec.batchPerTask) : splitProportional(g, workers.map(() => 1)), plannedMs: 0 };
  }
  const known = workers.filter((w) => w.speed > 0);
  const g = spec.globalBatch;
  if (g !== undefined) {
    // A fixed batch, split by speed; a worker not measured yet counts at the median measured speed.
    const speeds = known.map((w) => w.speed).sort((a, b) => a - b);
    const median = speeds.length ? speeds[speeds.length >> 1] : 1;
    const weights = workers.map((w) => (w.speed > 0 ? w.speed : median));
    const sizes = splitProportional(g, weights);
    const total = weights.reduce((a, b) => a + b, 0);
    return { sizes, plannedMs: known.length === workers.length && total > 0 ? (g * 1000) / total : targetRoundMs };
  }
  const probe = spec.batchPerTask;
  const probes = workers.length - known.length;
  const budget = Math.max(0, maxBatch - probes * probe);
  const offered = known.reduce((a, w) => a + w.speed, 0);
  // The round lasts targetRoundMs, longer on a big grid (the coordinator takes each result in
  // turn), unless the batch cap binds first; a round of probes only lasts as long as the probes
  // take (nobody's speed is known to plan more).
  const baseMs = Math.max(targetRoundMs, ROUND_MS_PER_WORKER * workers.length);
  const plannedMs = offered > 0 ? Math.min(baseMs, (budget * 1000) / offered) : 0;
  const min = minTaskExamples(spec);
  // A measured worker always gets at least the minimum task: sized to nothing, it would never be
  // timed again, and one slow measurement would keep it out for good.
  const sizes = workers.map((w): number => (w.speed > 0 ? Math.max(min, Math.floor((w.speed * plannedMs) / 1000)) : Math.min(probe, maxBatch)));
  // Minimums can overshoot a tight cap. A slow worker whose minimum task would take more than
  // twice the round sits it out (slowest first, unless it is due for a re-measurement); then the
  // largest tasks give up the excess, never below the minimum; if the minimums alone are over the
  // cap, the slowest workers sit out after all.
  let total = sizes.reduce((a, b) => a + b, 0);
  const measured = workers.map((w, i) => ({ i, speed: w.speed, due: (w.satOut ?? 0) >= REPROBE_AFTER_ROUNDS })).filter((w) => w.speed > 0);
  const slowestFirst = [...measured].sort((a, b) => a.speed - b.speed);
  const busy = () => sizes.filter((n) => n > 0).length;
  for (const { i, speed, due } of slowestFirst) {
    if (total <= maxBatch || busy() === 1) break;
    if ((min * 1000) / speed <= 2 * plannedMs) break; // this one and the faster ones fit in time
    if (due) continue;
    total -= sizes[i];
    sizes[i] = 0;
  }
  while (total > maxBatch) {
    let j = -1;
    for (let k = 0; k < sizes.length; k++) if (workers[k].speed > 0 && sizes[k] > min && (j < 0 || sizes[k] > sizes[j])) j = k;
    if (j < 0) break;
    const cut = Math.min(total - maxBatch, sizes[j] - min);
    sizes[j] -= cut;
    total -= cut;
  }
  for (const { i } of slowestFirst) {
    if (total <= maxBatch || busy() === 1) break;
    if (sizes[i] === 0) continue;
    total -= sizes[i];
    sizes[i] = 0;
  }
  return { sizes, plannedMs };
}

/** Inner steps of a local-mode worker's first task, before its speed is measured. */
export const LOCAL_PROBE_STEPS = 4;

/**
 * Sizes a local-mode (DiLoCo) round: tasks are whole inner steps of batchPerTask examples. With
 * fixed sizing every worker takes innerSteps (H); by speed, the worker of median measured speed
 * takes H and the others in proportion (1 to 2H), so that their tasks end together; a worker too
 * slow for one step in twice the round sits it out (unless due for a re-measurement). A worker
 * not measured yet takes LOCAL_PROBE_STEPS at most: its first task is its measurement, and it
 * must fit the first task's lease however slow the worker turns out to be. Sizes are examples
 * (steps · batch).
 */
export function planLocalRound(spec: RunSpec, workers: SizedWorker[]): RoundPlan {
  const b = spec.batchPerTask;
  const H = spec.sync.innerSteps;
  const speeds = workers.filter((w) => w.speed > 0).map((w) => w.speed).sort((x, y) => x - y);
  if (spec.sync.taskSizing === 'fixed') return { sizes: workers.map(() => H * b), plannedMs: 0 };
  const probe = Math.min(H, LOCAL_PROBE_STEPS) * b;
  if (speeds.length === 0) return { sizes: workers.map(() => probe), plannedMs: 0 };
  const median = speeds[speeds.length >> 1];
  const plannedMs = (H * b * 1000) / median;
  const sizes = workers.map((w): number => {
    if (!(w.speed > 0)) return probe;
    if ((b * 1000) / w.speed > 2 * plannedMs && (w.satOut ?? 0) < REPROBE_AFTER_ROUNDS) return 0;
    return Math.min(2 * H, Math.max(1, Math.round((H * w.speed) / median))) * b;
  });
  if (!sizes.some((n) => n > 0)) sizes[workers.findIndex((w) => w.speed === speeds.at(-1))] = b;
  return { sizes, plannedMs };
}

/** A local round's deadline: the spec's, or four times the planned round when that is longer (H steps can take a while). */
export function localDeadlineMs(spec: RunSpec, plannedMs: number): number {
  return Math.max(spec.sync.roundDeadlineMs, Math.ceil(4 * plannedMs) + 1000);
}

/**
 * A task for a worker that becomes ready while the round is open (it finished early, or it got
 * the parameters late): the time left in the round at its speed, within what the round may still
 * take. 0: nothing worth sending.
 */
export function lateTaskSize(spec: RunSpec, speed: number, msLeft: number, budgetLeft: number, plannedMs: number): number {
  if (budgetLeft <= 0 || spec.sync.taskSizing === 'fixed') return 0;
  // A measured worker gets more only when at least half a round is left: each task costs a whole
  // gradient upload, however few examples it holds.
  if (speed > 0 && msLeft < plannedMs / 2) return 0;
  const min = minTaskExamples(spec);
  const want = speed > 0 ? Math.floor((speed * msLeft) / 1000) : spec.batchPerTask;
  const n = Math.min(want, budgetLeft);
  return n >= min ? n : 0;
}

/** A worker's first task also fetches the shards it needs and warms its kernels: its lease allows for that. */
export const PROBE_LEASE_MS = 10_000;

/**
 * How long a task may take before its examples go to another worker: three times what its
 * worker's measured speed predicts plus a second; PROBE_LEASE_MS for a worker not measured yet;
 * the round's deadline with fixed task sizes (the classic schedule). Never past the deadline.
 */
export function leaseMs(spec: RunSpec, examples: number, speed: number, plannedMs: number, roundDeadlineMs = spec.sync.roundDeadlineMs): number {
  const { targetRoundMs, taskSizing } = spec.sync;
  if (taskSizing === 'fixed') return roundDeadlineMs;
  const lease = speed > 0 ? 3 * ((examples * 1000) / speed) + 1000 : PROBE_LEASE_MS + 3 * Math.max(plannedMs, targetRoundMs);
  return Math.min(roundDeadlineMs, Math.ceil(lease));
}

/**
 * The learning rate's factor for a round of `batch` examples: 1 with globalBatch (the rate was
 * chosen for it), else (batch / batchPerTask)^p with p = 1/2 ('sqrt') or 1 ('linear'), at most 16.
 */
export function lrFactor(spec: RunSpec, batch: number): number {
  if (spec.globalBatch !== undefined || spec.sync.taskSizing === 'fixed' || spec.sync.lrScaling === 'none' || batch <= 0) return 1;
  const ratio = batch / spec.batchPerTask;
  const f = spec.sync.lrScaling === 'sqrt' ? Math.sqrt(ratio) : ratio;
  return Math.min(16, f);
}

/** How long a round waits, after its first worker is ready, for the others that hold the parameters. */
export function gatherMs(spec: RunSpec): number {
  return Math.min(100, Math.max(5, Math.round(spec.sync.targetRoundMs / 20)));
}
