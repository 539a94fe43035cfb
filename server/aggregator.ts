// The aggregator: validates worker gradients and folds them into a round's weighted running
// sum in place. A RoundSum is a value that combines with another (sum of weight x gradient,
// total weight), so that partial sums from several coordinator processes can be merged.
import { codedBytes, foldUpdate, topkCount, type UpdateCoding } from '../shared/update-codec.ts';
import { f16BitsToF32 } from '../shared/reference/quantize.ts';

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

  /** Folds one worker's mean gradient over `samples` examples, times `scale` (norm clipping), in place (no copy). */
  add(gradient: Float32Array, samples: number, loss: number, _workerId?: string, scale = 1): void {
    const s = this.sum;
    const w = samples * scale;
    for (let i = 0; i < s.length; i++) s[i] += w * gradient[i];
    this.weight += samples;
    this.lossSum += samples * loss;
    this.results++;
  }

  /** Folds a coded mean result (shared/update-codec.ts) in place; malformed bytes throw before the sum is touched. */
  addCoded(coding: UpdateCoding, bytes: Uint8Array, samples: number, loss: number, _workerId?: string, scale = 1): void {
    foldUpdate(coding, bytes, this.length, samples * scale, this.sum);
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

/**
 * The checks of checkGradient on a coded result, read in place: its length for the coding, its
 * loss, and the norm of what it decodes to. Structure (top-k indices, scales) is checked again by
 * the fold, which refuses before touching the round's sum.
 */
export function checkCodedUpdate(coding: UpdateCoding, bytes: Uint8Array, expectedLength: number, loss: number, maxNorm: number): GradientCheck {
  if (!Number.isFinite(loss) || loss < 0) return { ok: false, reason: 'bad_loss', message: `loss must be a finite number >= 0, got ${loss}` };
  const check = codedNorm(coding, bytes, expectedLength);
  if (!check.ok) return check;
  const norm = check.norm!;
  if (norm > maxNorm) return { ok: false, reason: 'norm_too_large', message: `gradient norm ${norm.toPrecision(3)} exceeds the bound ${maxNorm.toPrecision(3)}`, norm };
  return check;
}

/** The length and finiteness checks of checkCodedUpdate, and the norm of what the result decodes to. */
export function codedNorm(coding: UpdateCoding, bytes: Uint8Array, expectedLength: number): GradientCheck {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = expectedLength;
  const want = codedBytes(coding, n);
  if (coding.kind === 'topk' && bytes.byteLength >= 4 && view.getUint32(0, true) !== topkCount(n, coding.fraction)) {
    return { ok: false, reason: 'wrong_length', message: `a topk result for ${n} values at fraction ${coding.fraction} holds ${topkCount(n, coding.fraction)} values, it says ${view.getUint32(0, true)}` };
  }
  if (bytes.byteLength !== want) {
    if (coding.kind === 'none' && bytes.byteLength % 4 === 0) return { ok: false, reason: 'wrong_length', message: `gradient has ${bytes.byteLength / 4} values, the model has ${n}` };
    return { ok: false, reason: 'wrong_length', message: `a ${coding.kind} result for a model of ${n} values is ${want} bytes, got ${bytes.byteLength}` };
  }
  let sq = 0;
  const scaled = (scalesAt: number, qAt: number, count: number, block: number): GradientCheck | null => {
    for (let b = 0; b * block < count; b++) {
      const s = view.getFloat32(scalesAt + 4 * b, true);
      if (!(Number.isFinite(s) && s >= 0)) return { ok: false, reason: 'non_finite', message: `scale ${b} of the ${coding.kind} result is ${s}, not a finite non-negative number` };
      const end = Math.min(count, (b + 1) * block);
      let bq = 0;
      for (let j = b * block; j < end; j++) {
        const q = view.getInt8(qAt + j);
        bq += q * q;
      }
      sq += s * s * bq;
    }
    return null;
  };
  switch (coding.kind) {
    case 'none':
      for (let i = 0; i < n; i++) {
        const v = view.getFloat32(4 * i, true);
        if (!Number.isFinite(v)) return { ok: false, reason: 'non_finite', message: `gradient value ${i} is ${v}` };
        sq += v * v;
      }
      break;
    case 'fp16':
      for (let i = 0; i < n; i++) {
        const v = f16BitsToF32(view.getUint16(2 * i, true));
        if (!Number.isFinite(v)) return { ok: false, reason: 'non_finite', message: `value ${i} of the fp16 result is ${v}` };
        sq += v * v;
      }
      break;
    case 'int8': {
      const blocks = Math.ceil(n / coding.block);
      const bad = scaled(0, 4 * blocks, n, coding.block);
      if (bad) return bad;
      break;
    }
    case 'topk': {
      const k = topkCount(n, coding.fraction);
      const bad = scaled(4 + 4 * k, 4 + 4 * k + 4 * Math.ceil(k / coding.block), k, coding.block);
      if (bad) return bad;
      break;
    }
  }
  return { ok: true, norm: Math.sqrt(sq) };
}
