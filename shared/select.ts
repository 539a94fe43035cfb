// Selection in place: the value of a given rank in a range, linear on average, with pseudo-random
// pivots (no arrangement of values a sender picks makes it quadratic) and three-way partitions
// (many equal values, zeros most of all, stay linear). The top-k coding and the coordinate-wise
// aggregation rules both use it.

/** Values a selection works on: f32 results, or f64 for plain numbers such as losses. */
export type Values = Float32Array | Float64Array;

/**
 * Reorders a[lo, hi) so that a[k] holds the value of its rank there (k in [lo, hi)), with nothing
 * larger before it and nothing smaller after it. Three-way partitions keep many equal values linear.
 */
export function selectInPlace(a: Values, lo: number, hi: number, k: number): void {
  let l = lo;
  let h = hi - 1;
  let seed = (0x9e3779b9 ^ (hi - lo)) >>> 0;
  while (h - l > 12) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const pivot = a[l + (seed % (h - l + 1))];
    // [l, lt) < pivot, [lt, i) == pivot, (gt, h] > pivot
    let lt = l;
    let i = l;
    let gt = h;
    while (i <= gt) {
      const v = a[i];
      if (v < pivot) {
        a[i++] = a[lt];
        a[lt++] = v;
      } else if (v > pivot) {
        a[i] = a[gt];
        a[gt--] = v;
      } else i++;
    }
    if (k < lt) h = lt - 1;
    else if (k > gt) l = gt + 1;
    else return;
  }
  // A short range: insertion sort.
  for (let i = l + 1; i <= h; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= l && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

