// The aggregator: validates worker gradients and folds them into a round's weighted running
// sum in place. A RoundSum is a value that combines with another (sum of weight x gradient,
// total weight), so that partial sums from several coordinator processes can be merged.

export class RoundSum {
  /** Σ samples_i · gradient_i. */
  readonly sum: Float32Array;
  /** Σ samples_i. */
  weight = 0;
  /** Σ samples_i · loss_i. */
  lossSum = 0;
  results = 0;

  constructor(readonly length: number) {
    this.sum = new Float32Array(length);
  }

  /** Folds one worker's mean gradient over `samples` examples, in place (no copy). */
  add(gradient: Float32Array, samples: number, loss: number): void {
    const s = this.sum;
    for (let i = 0; i < s.length; i++) s[i] += samples * gradient[i];
    this.weight += samples;
    this.lossSum += samples * loss;
    this.results++;
  }

  /** Merges another partial sum of the same round into this one. */
  combine(other: RoundSum): void {
    if (other.length !== this.length) throw new RangeError(`cannot combine sums of ${other.length} and ${this.length} values`);
    for (let i = 0; i < this.sum.length; i++) this.sum[i] += other.sum[i];
    this.weight += other.weight;
    this.lossSum += other.lossSum;
    this.results += other.results;
  }

  /** The sample-weighted mean gradient: equal to the gradient of the mean loss over all examples. */
  mean(): Float32Array {
    if (this.weight <= 0) throw new Error('no results in this round');
    const out = new Float32Array(this.length);
    const inv = 1 / this.weight;
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i] * inv;
    return out;
  }

  meanLoss(): number {
    return this.weight > 0 ? this.lossSum / this.weight : NaN;
  }
}

export type Rejection = 'wrong_length' | 'non_finite' | 'norm_too_large' | 'bad_loss';

export interface GradientCheck {
  ok: boolean;
  reason?: Rejection;
  message?: string;
  norm?: number;
}

/**
 * Shape, finiteness and a norm bound. The bound stops one broken or hostile worker from
 * wrecking the run with a huge update; honest gradients of a mean loss are far below it.
 */
export function checkGradient(gradient: Float32Array, expectedLength: number, loss: number, maxNorm: number): GradientCheck {
  if (gradient.length !== expectedLength) {
    return { ok: false, reason: 'wrong_length', message: `gradient has ${gradient.length} values, the model has ${expectedLength}` };
  }
  if (!Number.isFinite(loss) || loss < 0) return { ok: false, reason: 'bad_loss', message: `loss must be a finite number >= 0, got ${loss}` };
  let sq = 0;
  for (let i = 0; i < gradient.length; i++) {
    const v = gradient[i];
    if (!Number.isFinite(v)) return { ok: false, reason: 'non_finite', message: `gradient value ${i} is ${v}` };
    sq += v * v;
  }
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) return { ok: false, reason: 'norm_too_large', message: `gradient norm ${norm.toPrecision(3)} exceeds the bound ${maxNorm}`, norm };
  return { ok: true, norm };
}
