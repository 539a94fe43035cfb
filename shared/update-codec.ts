// How an update (a gradient or a pseudo-gradient, f32[N]) travels compressed, and how the
// coordinator folds a compressed one into a round's sum without decoding it into a buffer first.
//
// Codings (bytes little-endian, so a worker in any page and the coordinator agree):
//   none  f32[N]
//   fp16  u16[N], IEEE binary16 rounded to nearest even
//   int8  f32 scales[ceil(N / block)], then i8[N]; value = q · scale of its block
//   topk  u32 k, u32 indices[k] (strictly increasing), f32 scales[ceil(k / block)], i8 q[k] (int8 of
//         the k largest-magnitude values, the rest taken as 0)
// The lossy ones keep error feedback on the sender: what was not sent is added to the next update,
// so nothing is lost for good, only delayed (ALGORITHMS.md, "Error feedback").
//
// @example a worker's side, then the coordinator's
//   const ef = new ErrorFeedback(n);
//   const bytes = encodeUpdate({ kind: 'int8', block: 256 }, grad, ef);
//   foldUpdate({ kind: 'int8', block: 256 }, bytes, n, examples, roundSum); // roundSum += examples · update
import { f16BitsToF32, f32ToF16Bits, quantizeInt8Ref } from './reference/quantize.ts';
import type { Compression } from './run-spec.ts';
import { selectInPlace } from './select.ts';

export type UpdateCoding = { kind: 'none' } | { kind: 'fp16' } | { kind: 'int8'; block: number } | { kind: 'topk'; fraction: number; block: number };

/** The coding a run's spec asks for, of what workers send (`up`) or of the parameter deltas (`down`). */
export function codingOf(compression: Compression, direction: 'up' | 'down'): UpdateCoding {
  const kind = compression[direction];
  switch (kind) {
    case 'none':
    case 'fp16':
      return { kind };
    case 'int8':
      return { kind, block: compression.block };
    case 'topk':
      return { kind, fraction: compression.fraction, block: compression.block };
  }
}

export class UpdateCodecError extends Error {
  override name = 'UpdateCodecError';
}

/** What the sender did not send yet: added to its next update before coding it. */
export class ErrorFeedback {
  readonly residual: Float32Array;
  constructor(n: number) {
    this.residual = new Float32Array(n);
  }
}

/** Values a top-k coding keeps out of n (at least one). */
export function topkCount(n: number, fraction: number): number {
  return Math.max(1, Math.min(n, Math.round(n * fraction)));
}

/** Bytes of an update of n values in this coding. */
export function codedBytes(coding: UpdateCoding, n: number): number {
  switch (coding.kind) {
    case 'none':
      return 4 * n;
    case 'fp16':
      return 2 * n;
    case 'int8':
      return 4 * Math.ceil(n / coding.block) + n;
    case 'topk': {
      const k = topkCount(n, coding.fraction);
      return 4 + 4 * k + 4 * Math.ceil(k / coding.block) + k;
    }
  }
}

/**
 * Codes `update` (f32[N]). With `feedback`, the residual is added first and then replaced by what
 * this coding left out, so that Σ sent + residual = Σ updates, exactly up to float rounding.
 */
export function encodeUpdate(coding: UpdateCoding, update: Float32Array, feedback?: ErrorFeedback): Uint8Array {
  const n = update.length;
  let x = update;
  if (feedback && coding.kind !== 'none') {
    if (feedback.residual.length !== n) throw new UpdateCodecError(`error feedback holds ${feedback.residual.length} values, the update ${n}`);
    x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = update[i] + feedback.residual[i];
  }
  const out = new Uint8Array(codedBytes(coding, n));
  const view = new DataView(out.buffer);
  switch (coding.kind) {
    case 'none':
      out.set(new Uint8Array(x.buffer, x.byteOffset, 4 * n));
      return out;
    case 'fp16':
      for (let i = 0; i < n; i++) view.setUint16(2 * i, f32ToF16Bits(x[i]), true);
      break;
    case 'int8': {
      const { q, scales } = quantizeInt8Ref(x, coding.block);
      scales.forEach((s, b) => view.setFloat32(4 * b, s, true));
      out.set(new Uint8Array(q.buffer), 4 * scales.length);
      break;
    }
    case 'topk': {
      const k = topkCount(n, coding.fraction);
      const indices = topkIndices(x, k);
      const { q, scales } = quantizeInt8Ref(Array.from(indices, (i) => x[i]), coding.block);
      view.setUint32(0, k, true);
      indices.forEach((idx, j) => view.setUint32(4 + 4 * j, idx, true));
      scales.forEach((s, b) => view.setFloat32(4 + 4 * k + 4 * b, s, true));
      out.set(new Uint8Array(q.buffer), 4 + 4 * k + 4 * scales.length);
      break;
    }
  }
  if (feedback) {
    // What was sent, decoded exactly as the coordinator will: the residual is the rest.
    const sent = new Float32Array(n);
    foldUpdate(coding, out, n, 1, sent);
    for (let i = 0; i < n; i++) feedback.residual[i] = x[i] - sent[i];
  }
  return out;
}

/**
 * The indices of the k largest |x[i]|, increasing: the first k of a stable sort by |x| descending,
 * so a tie at the threshold goes to the lower indices. Linear time on average (a selection of the
 * k-th largest magnitude, then one pass), where a sort of all N indices was N log N.
 * @example topkIndices(new Float32Array([0.1, -3, 2, -2]), 2); // [1, 2]
 */
export function topkIndices(x: Float32Array, k: number): Uint32Array {
  const n = x.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new UpdateCodecError(`top-k of ${n} values cannot keep ${k}`);
  const indices = new Uint32Array(k);
  if (k === 0) return indices;
  const mags = new Float32Array(n);
  for (let i = 0; i < n; i++) mags[i] = Math.abs(x[i]);
  const threshold = kthLargest(mags, k);
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(x[i]) > threshold) above++;
  let tiesKept = k - above; // values equal to the threshold that make the cut, the lowest indices first
  let j = 0;
  for (let i = 0; i < n && j < k; i++) {
    const m = Math.abs(x[i]);
    if (m > threshold) indices[j++] = i;
    else if (m === threshold && tiesKept > 0) {
      indices[j++] = i;
      tiesKept--;
    }
  }
  return indices;
}

/** The k-th largest value of `a` (1 ≤ k ≤ a.length), reordering `a`. */
function kthLargest(a: Float32Array, k: number): number {
  const rank = a.length - k; // its place in ascending order
  selectInPlace(a, 0, a.length, rank);
  return a[rank];
}

/**
 * sum[i] += weight · decoded[i], reading the coded bytes in place (no decoded copy). Throws
 * UpdateCodecError naming what is wrong (length, a scale that is not finite and non-negative,
 * top-k indices out of range or not strictly increasing, a value that is not finite); `sum` is
 * left untouched then, so a bad result never reaches a round.
 */
export function foldUpdate(coding: UpdateCoding, bytes: Uint8Array, n: number, weight: number, sum: Float32Array): void {
  if (sum.length !== n) throw new UpdateCodecError(`the round's sum holds ${sum.length} values, the update ${n}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const expect = (bytesWanted: number) => {
    if (bytes.byteLength !== bytesWanted) throw new UpdateCodecError(`a ${coding.kind} update of ${n} values is ${bytesWanted} bytes, got ${bytes.byteLength}`);
  };
  const checkScales = (at: number, count: number) => {
    for (let b = 0; b < count; b++) {
      const s = view.getFloat32(at + 4 * b, true);
      if (!(Number.isFinite(s) && s >= 0)) throw new UpdateCodecError(`scale ${b} of the ${coding.kind} update is ${s}, not a finite non-negative number`);
    }
  };
  switch (coding.kind) {
    case 'none': {
      expect(4 * n);
      for (let i = 0; i < n; i++) if (!Number.isFinite(view.getFloat32(4 * i, true))) throw new UpdateCodecError(`value ${i} of the update is not finite`);
      for (let i = 0; i < n; i++) sum[i] += weight * view.getFloat32(4 * i, true);
      return;
    }
    case 'fp16': {
      expect(2 * n);
      for (let i = 0; i < n; i++) if ((view.getUint16(2 * i, true) & 0x7c00) === 0x7c00) throw new UpdateCodecError(`value ${i} of the fp16 update is not finite`);
      for (let i = 0; i < n; i++) sum[i] += weight * f16BitsToF32(view.getUint16(2 * i, true));
      return;
    }
    case 'int8': {
      const blocks = Math.ceil(n / coding.block);
      expect(4 * blocks + n);
      checkScales(0, blocks);
      const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * blocks, n);
      for (let b = 0; b < blocks; b++) {
        const s = weight * view.getFloat32(4 * b, true);
        const end = Math.min(n, (b + 1) * coding.block);
        for (let i = b * coding.block; i < end; i++) sum[i] += s * q[i];
      }
      return;
    }
    case 'topk': {
      if (bytes.byteLength < 4) throw new UpdateCodecError(`a topk update is at least 4 bytes, got ${bytes.byteLength}`);
      const k = view.getUint32(0, true);
      if (k !== topkCount(n, coding.fraction)) throw new UpdateCodecError(`a topk update of ${n} values at fraction ${coding.fraction} holds ${topkCount(n, coding.fraction)} values, it says ${k}`);
      const blocks = Math.ceil(k / coding.block);
      expect(4 + 4 * k + 4 * blocks + k);
      let prev = -1;
      for (let j = 0; j < k; j++) {
        const idx = view.getUint32(4 + 4 * j, true);
        if (idx >= n) throw new UpdateCodecError(`top-k index ${idx} (entry ${j}) is outside [0, ${n})`);
        if (idx <= prev) throw new UpdateCodecError(`top-k index ${idx} (entry ${j}) ${idx === prev ? 'repeats' : 'is out of order'}: indices must be strictly increasing`);
        prev = idx;
      }
      checkScales(4 + 4 * k, blocks);
      const qAt = 4 + 4 * k + 4 * blocks;
      for (let j = 0; j < k; j++) {
        const q = view.getInt8(qAt + j);
        const s = view.getFloat32(4 + 4 * k + 4 * Math.floor(j / coding.block), true);
        sum[view.getUint32(4 + 4 * j, true)] += weight * s * q;
      }
      return;
    }
  }
}
