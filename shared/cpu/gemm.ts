// Fast CPU matrix kernels over Float32Arrays for the CPU backend's layer kernels (shared/cpu/): two
// register-blocked dense products, a sparse-times-dense product for inputs that are mostly zero
// (MNIST pixels: about 80 % of them), and a blocked transpose. Layer logic does not belong here.
//
// Shapes: C[M, N] is the result, K the summed dimension; all matrices are flat row-major.
// Every kernel overwrites its output and accumulates in float64 (JS numbers), as the plain-loop
// references in shared/reference/ do, so results agree with them to float32 rounding.
//
// Why these loop orders: V8 gives no SIMD to plain TS, so speed comes from keeping sums in
// registers. A 4×4 block of C holds 16 running sums while one pass over K loads 8 values, 2 loads
// per multiply-add instead of the 3 loads and 1 store of a row-streaming i-k-j loop. The 4 rows of
// A and 4 rows of B a block reads (32·K bytes) stay in L1 for the widths an MLP worker trains, and
// all of B stays in L2 across row blocks, so blocking over K as well would only add passes over C.

/**
 * C = A · Bᵀ. a: f32[M, K], b: f32[N, K] (e.g. nn.Linear weight [out, in]) -> c: f32[M, N].
 * Dot-product form: both operands are read along their rows.
 * @example gemmNT(x, w, z, batch, out, inp); // z = x · wᵀ, a dense layer's forward
 */
export function gemmNT(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number): void {
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const a0 = i * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0; p < k; p++) {
        const w0 = b[b0 + p];
        const w1 = b[b1 + p];
        const w2 = b[b2 + p];
        const w3 = b[b3 + p];
        let v = a[a0 + p];
        c00 += v * w0; c01 += v * w1; c02 += v * w2; c03 += v * w3;
        v = a[a1 + p];
        c10 += v * w0; c11 += v * w1; c12 += v * w2; c13 += v * w3;
        v = a[a2 + p];
        c20 += v * w0; c21 += v * w1; c22 += v * w2; c23 += v * w3;
        v = a[a3 + p];
        c30 += v * w0; c31 += v * w1; c32 += v * w2; c33 += v * w3;
      }
      let o = i * n + j;
      c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03;
      o += n;
      c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13;
      o += n;
      c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23;
      o += n;
      c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
    }
    // Ragged right edge: columns n4..n of these four rows.
    for (let j = n4; j < n; j++) {
      for (let r = i; r < i + 4; r++) c[r * n + j] = dot(a, r * k, b, j * k, k);
    }
  }
  // Ragged bottom edge: rows m4..m, every column.
  for (let i = m4; i < m; i++) {
    for (let j = 0; j < n; j++) c[i * n + j] = dot(a, i * k, b, j * k, k);
  }
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, k: number): number {
  let s0 = 0;
  let s1 = 0;
  let p = 0;
  for (; p + 1 < k; p += 2) {
    s0 += a[ao + p] * b[bo + p];
    s1 += a[ao + p + 1] * b[bo + p + 1];
  }
  if (p < k) s0 += a[ao + p] * b[bo + p];
  return s0 + s1;
}

/**
 * C = Aᵀ · B. a: f32[K, M], b: f32[K, N] -> c: f32[M, N].
 * Outer-product form: each step over K reads 4 contiguous values of a row of A and of a row of B.
 * @example gemmTN(dz, x, dw, out, inp, batch); // dW = dzᵀ · x, a dense layer's weight gradient
 */
export function gemmTN(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number): void {
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    for (let j = 0; j < n4; j += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      let ao = i;
      let bo = j;
      for (let p = 0; p < k; p++, ao += m, bo += n) {
        const w0 = b[bo];
        const w1 = b[bo + 1];
        const w2 = b[bo + 2];
        const w3 = b[bo + 3];
        let v = a[ao];
        c00 += v * w0; c01 += v * w1; c02 += v * w2; c03 += v * w3;
        v = a[ao + 1];
        c10 += v * w0; c11 += v * w1; c12 += v * w2; c13 += v * w3;
        v = a[ao + 2];
        c20 += v * w0; c21 += v * w1; c22 += v * w2; c23 += v * w3;
        v = a[ao + 3];
        c30 += v * w0; c31 += v * w1; c32 += v * w2; c33 += v * w3;
      }
      let o = i * n + j;
      c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03;
      o += n;
      c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13;
      o += n;
      c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23;
      o += n;
      c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
    }
    for (let j = n4; j < n; j++) {
      for (let r = i; r < i + 4; r++) c[r * n + j] = stridedDot(a, r, m, b, j, n, k);
    }
  }
  for (let i = m4; i < m; i++) {
    for (let j = 0; j < n; j++) c[i * n + j] = stridedDot(a, i, m, b, j, n, k);
  }
}

function stridedDot(a: Float32Array, ao: number, as: number, b: Float32Array, bo: number, bs: number, k: number): number {
  let s = 0;
  for (let p = 0; p < k; p++) s += a[ao + p * as] * b[bo + p * bs];
  return s;
}

/**
 * A sparse matrix in compressed rows (CSR) with preallocated storage: the nonzeros of a dense
 * f32[R, K] matrix, or of its transpose. Refilled each step; never grows past its capacity.
 */
export class SparseRows {
  rows = 0;
  /** Columns of the sparse matrix (the K of the product it takes part in). */
  cols = 0;
  /** Nonzeros of row r are entries start[r] .. start[r + 1] - 1. */
  readonly start: Int32Array;
  readonly index: Int32Array;
  readonly value: Float32Array;
  /** Next free entry of each row while filling by columns. */
  private readonly cursor: Int32Array;

  constructor(maxRows: number, maxEntries: number) {
    this.start = new Int32Array(maxRows + 1);
    this.cursor = new Int32Array(maxRows);
    this.index = new Int32Array(maxEntries);
    this.value = new Float32Array(maxEntries);
  }

  /**
   * Loads the nonzeros of a: f32[rows, cols] row-major, unless there are more than maxEntries of
   * them: then it stops early and returns false (the caller multiplies densely instead).
   */
  fromRows(a: Float32Array, rows: number, cols: number, maxEntries = rows * cols): boolean {
    this.check(rows, Math.min(maxEntries, rows * cols));
    const { start, index, value } = this;
    let e = 0;
    for (let r = 0; r < rows; r++) {
      start[r] = e;
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = a[base + c];
        if (v !== 0) {
          if (e === maxEntries) return false;
          index[e] = c;
          value[e] = v;
          e++;
        }
      }
    }
    start[rows] = e;
    this.rows = rows;
    this.cols = cols;
    return true;
  }

  /** Loads sᵀ: row r here is column r of s. Work is proportional to s's nonzeros. */
  transposeOf(s: SparseRows): void {
    const rows = s.cols;
    const entries = s.start[s.rows];
    this.check(rows, entries);
    const { start, index, value, cursor } = this;
    start.fill(0, 0, rows + 1);
    for (let e = 0; e < entries; e++) start[s.index[e] + 1]++;
    for (let c = 0; c < rows; c++) {
      start[c + 1] += start[c];
      cursor[c] = start[c];
    }
    // Walking s row by row keeps each row here sorted by its column index.
    for (let r = 0; r < s.rows; r++) {
      for (let e = s.start[r]; e < s.start[r + 1]; e++) {
        const to = cursor[s.index[e]]++;
        index[to] = r;
        value[to] = s.value[e];
      }
    }
    this.rows = rows;
    this.cols = s.rows;
  }

  private check(rows: number, entries: number): void {
    if (rows + 1 > this.start.length || entries > this.value.length) {
      throw new RangeError(`SparseRows holds ${this.start.length - 1} rows and ${this.value.length} entries, asked for ${rows} rows of ${entries} values`);
    }
  }
}

/**
 * C = S · B with S sparse: s: [R, K] (SparseRows), b: f32[K, N] -> c[r, j] stored at
 * c[r * rowStride + j * colStride] (rowStride N, colStride 1 for a row-major [R, N]; 1 and R to
 * write the transpose). Work is proportional to the nonzeros of S times N.
 * Skipping zeros differs from the dense product only where B holds ±∞ or NaN (0·∞ is NaN).
 * @example spmm(pixels, wt, z, out, out, 1); // z = x · wᵀ with wt = wᵀ: f32[in, out]
 */
export function spmm(s: SparseRows, b: Float32Array, n: number, c: Float32Array, rowStride: number, colStride: number): void {
  const { start, index, value } = s;
  const n8 = n - (n % 8);
  for (let r = 0; r < s.rows; r++) {
    const e0 = start[r];
    const e1 = start[r + 1];
    const out = r * rowStride;
    for (let j = 0; j < n8; j += 8) {
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
      for (let e = e0; e < e1; e++) {
        const v = value[e];
        const bo = index[e] * n + j;
        c0 += v * b[bo]; c1 += v * b[bo + 1]; c2 += v * b[bo + 2]; c3 += v * b[bo + 3];
        c4 += v * b[bo + 4]; c5 += v * b[bo + 5]; c6 += v * b[bo + 6]; c7 += v * b[bo + 7];
      }
      let o = out + j * colStride;
      c[o] = c0; o += colStride; c[o] = c1; o += colStride; c[o] = c2; o += colStride; c[o] = c3; o += colStride;
      c[o] = c4; o += colStride; c[o] = c5; o += colStride; c[o] = c6; o += colStride; c[o] = c7;
    }
    for (let j = n8; j < n; j++) {
      let sum = 0;
      for (let e = e0; e < e1; e++) sum += value[e] * b[index[e] * n + j];
      c[out + j * colStride] = sum;
    }
  }
}

/** dst = srcᵀ. src: f32[R, C] -> dst: f32[C, R], in 16×16 tiles so both sides stay in cache. */
export function transpose(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  const T = 16;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(r0 + T, rows);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(c0 + T, cols);
      for (let r = r0; r < r1; r++) {
        const s = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[s + c];
      }
    }
  }
}
