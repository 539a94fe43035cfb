// Order statistics of a few values at a time, for the coordinate-wise rules: the median and the
// trimmed mean of a range (by selection in place, shared/select.ts), and a driver that hands each
// coordinate's values, one per vote, to such a reduction as one contiguous range.
import { selectInPlace, type Values } from '../../shared/select.ts';

/** The median of a[lo, lo + n) (the mean of the two middle values when n is even); reorders the range. */
export function medianInPlace(a: Values, lo: number, n: number): number {
  const mid = lo + (n >> 1);
  selectInPlace(a, lo, lo + n, mid);
  if (n & 1) return a[mid];
  let below = a[lo];
  for (let i = lo + 1; i < mid; i++) if (a[i] > below) below = a[i];
  return (below + a[mid]) / 2;
}

/** The mean of a[lo, lo + n) without its `cut` smallest and `cut` largest values (2·cut < n); reorders the range. */
export function trimmedMeanInPlace(a: Values, lo: number, n: number, cut: number): number {
  const hi = lo + n;
  if (cut > 0) {
    selectInPlace(a, lo, hi, lo + cut); // the cut smallest now lie before lo + cut
    selectInPlace(a, lo + cut, hi, hi - cut); // and the cut largest from hi - cut on
  }
  let s = 0;
  for (let i = lo + cut; i < hi - cut; i++) s += a[i];
  return s / (n - 2 * cut);
}

/** Coordinates gathered per block: n values of each of BLOCK coordinates fit the cache at a time. */
const BLOCK = 256;

/**
 * out[j] = reduce over the votes' values of coordinate j (f32[N] each, N = out.length), each
 * coordinate's values handed over as the contiguous range [at, at + votes.length) of a scratch
 * array that the reduction may reorder. Blocks of coordinates are gathered vote by vote, so each
 * vote is read in order rather than one value from each of n arrays per coordinate.
 */
export function coordinatewise(votes: readonly Float32Array[], out: Float32Array, reduce: (values: Float32Array, at: number, n: number) => number): Float32Array {
  const n = votes.length;
  const length = out.length;
  const scratch = new Float32Array(n * Math.min(BLOCK, length));
  for (let j0 = 0; j0 < length; j0 += BLOCK) {
    const width = Math.min(BLOCK, length - j0);
    for (let r = 0; r < n; r++) {
      const x = votes[r];
      for (let c = 0; c < width; c++) scratch[c * n + r] = x[j0 + c];
    }
    for (let c = 0; c < width; c++) out[j0 + c] = reduce(scratch, c * n, n);
  }
  return out;
}

/** The median of plain numbers (the losses of a round's votes). */
export function medianOf(values: readonly number[]): number {
  return values.length ? medianInPlace(Float64Array.from(values), 0, values.length) : NaN;
}
