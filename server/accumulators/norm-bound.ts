// Per-result norm clipping at a bound learned from the run's own recent results: FACTOR × the
// median, over the last WINDOW rounds, of each round's median result norm. A result above the
// bound is folded scaled down to it; one above REFUSE_MULTIPLE × the bound is refused (no honest
// worker of the same run is that far off). In a run's first round there is nothing to learn from
// yet: its results are kept (one decoded copy each, as the robust rules keep them anyway) and
// folded when the round closes, clipped at FACTOR × that round's own median norm; only the
// coordinator's fixed bound (maxGradientNorm) refuses. Medians, not means: a hostile minority can move a
// round's median only within the honest norms. Applies to every rule, to gradients and to local
// mode's pseudo-gradients alike; what a rule does with the clipped results is its own business.
import { codedNorm, type GradientCheck } from '../aggregator.ts';
import { foldUpdate, type UpdateCoding } from '../../shared/update-codec.ts';
import type { Accumulator } from '../accumulator.ts';
import { medianOf } from './order-statistics.ts';

/** The bound, as a multiple of the recent median norm: honest results are rarely above it. */
export const NORM_BOUND_FACTOR = 3;
/** Rounds whose median norms the bound is learned from (it follows the norms as training goes). */
export const NORM_BOUND_WINDOW = 20;
/** Results above this multiple of the bound are refused rather than clipped. */
export const REFUSE_MULTIPLE = 100;

/** What a checkpoint keeps of the bound: the recent rounds' median norms, oldest first. */
export interface NormBoundState {
  medians: number[];
}

/**
 * @example
 *   const bound = new NormBound(); // one per run, kept across rounds
 *   const limit = bound.refuseAbove(1e4); // refuse results above this, with a reason
 *   const scale = bound.admit(norm); // fold the result times `scale` (1, or bound / norm)
 *   bound.endRound(); // learns from the round's accepted norms
 */
export class NormBound {
  private medians: number[] = [];
  /** Norms of the results admitted in the open round (before clipping). */
  private round: number[] = [];
  /** Results clipped since the run began (for logs and the benchmark). */
  clipped = 0;

  constructor(
    readonly factor = NORM_BOUND_FACTOR,
    readonly window = NORM_BOUND_WINDOW,
    readonly refuseMultiple = REFUSE_MULTIPLE,
  ) {}

  /** The clipping bound, or Infinity while nothing is learned yet (the first round). */
  get bound(): number {
    return this.medians.length ? this.factor * medianOf(this.medians) : Infinity;
  }

  /** The largest norm accepted at all: `fixed` (the coordinator's bound), or less once the run has a bound. */
  refuseAbove(fixed: number): number {
    return Math.min(fixed, this.refuseMultiple * this.bound);
  }

  /** Records an accepted result's norm; returns the factor its values are folded with (≤ 1). */
  admit(norm: number): number {
    this.round.push(norm);
    const bound = this.bound;
    if (norm <= bound) return 1;
    this.clipped++;
    return bound / norm;
  }

  /** The round committed: its median norm joins the window. */
  endRound(): void {
    if (this.round.length) this.medians.push(medianOf(this.round));
    if (this.medians.length > this.window) this.medians.splice(0, this.medians.length - this.window);
    this.round = [];
  }

  /** The round was dropped without committing: what it admitted is forgotten. */
  dropRound(): void {
    this.round = [];
  }

  save(): NormBoundState {
    return { medians: [...this.medians] };
  }

  /** Takes back what save() gave (from a checkpoint: anything that is not a positive finite number is dropped). */
  restore(state: NormBoundState): void {
    const medians: unknown[] = Array.isArray(state?.medians) ? state.medians : [];
    this.medians = medians.filter((m): m is number => typeof m === 'number' && Number.isFinite(m) && m > 0).slice(-this.window);
    this.round = [];
  }
}

/**
 * A rule's accumulator with the run's norm bound in front: each result is measured (or its norm
 * taken from the caller's check), folded scaled to the bound, and the round's norms teach the
 * bound when the round is aggregated.
 */
export class NormClipped implements Accumulator {
  private ended = false;
  /** The first round's results, kept until it closes (null once the run has a bound). */
  private held: { values: Float32Array; weight: number; loss: number; workerId?: string; norm: number }[] | null;
  private heldWeight = 0;

  constructor(
    private readonly inner: Accumulator,
    readonly normBound: NormBound,
    readonly length: number,
  ) {
    this.held = Number.isFinite(normBound.bound) ? null : [];
  }

  get weight(): number {
    return this.inner.weight + this.heldWeight;
  }

  get results(): number {
    return this.inner.results + (this.held?.length ?? 0);
  }

  /** The largest norm this round accepts; the caller refuses results above it (checkCodedUpdate). */
  maxNorm(fixed: number): number {
    return this.normBound.refuseAbove(fixed);
  }

  add(values: Float32Array, weight: number, loss: number, workerId?: string, scale = 1): void {
    let sq = 0;
    for (let i = 0; i < values.length; i++) sq += values[i] * values[i];
    if (this.held) {
      if (values.length !== this.length) throw new RangeError(`a result of ${values.length} values for a model of ${this.length}`);
      return this.hold(values.map((x) => scale * x), weight, loss, workerId, scale * Math.sqrt(sq));
    }
    const clip = this.clipFor(scale * Math.sqrt(sq));
    this.inner.add(values, weight, loss, workerId, scale * clip.scale);
    clip.commit();
  }

  addCoded(coding: UpdateCoding, bytes: Uint8Array, weight: number, loss: number, workerId?: string, scale = 1): void {
    if (this.held) {
      // Decoding refuses a malformed result (UpdateCodecError) before anything is kept.
      const values = new Float32Array(this.length);
      foldUpdate(coding, bytes, this.length, scale, values);
      let sq = 0;
      for (let i = 0; i < values.length; i++) sq += values[i] * values[i];
      return this.hold(values, weight, loss, workerId, Math.sqrt(sq));
    }
    const check: GradientCheck = codedNorm(coding, bytes, this.length);
    // A malformed result is the inner fold's to refuse (UpdateCodecError), with nothing changed.
    const clip = this.clipFor(check.ok ? scale * check.norm! : 0);
    this.inner.addCoded(coding, bytes, weight, loss, workerId, scale * clip.scale);
    clip.commit();
  }

  /** The factor for a result of norm `norm`, recorded only once its fold succeeded. */
  private clipFor(norm: number): { scale: number; commit: () => void } {
    const bound = this.normBound.bound;
    return { scale: norm > bound ? bound / norm : 1, commit: () => void this.normBound.admit(norm) };
  }

  private hold(values: Float32Array, weight: number, loss: number, workerId: string | undefined, norm: number): void {
    if (this.ended) throw new Error('this round is already aggregated');
    if (!(Number.isFinite(weight) && weight > 0)) throw new RangeError(`a result's weight is its examples, a positive number; got ${weight}`);
    this.held!.push({ values, weight, loss, workerId, norm });
    this.heldWeight += weight;
  }

  /** The first round closes: its results folded in their order, clipped at FACTOR × their median norm. */
  private foldHeld(): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    this.heldWeight = 0;
    const bound = this.normBound.factor * medianOf(held.map((h) => h.norm));
    for (const h of held) {
      const clip = h.norm > bound ? bound / h.norm : 1;
      if (clip < 1) this.normBound.clipped++;
      this.inner.add(h.values, h.weight, h.loss, h.workerId, clip);
      this.normBound.admit(h.norm); // no bound yet: recorded, not clipped again
    }
  }

  mean(): Float32Array {
    if (!this.ended) this.foldHeld();
    const out = this.inner.mean();
    if (!this.ended) this.normBound.endRound();
    this.ended = true;
    return out;
  }

  meanLoss(): number {
    if (this.held?.length) {
      const w = this.heldWeight;
      return this.held.reduce((a, h) => a + h.weight * h.loss, 0) / w;
    }
    return this.inner.meanLoss();
  }

  release(): void {
    this.held = null;
    this.heldWeight = 0;
    this.inner.release?.();
    if (!this.ended) this.normBound.dropRound();
    this.ended = true;
  }
}
