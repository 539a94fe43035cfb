// y = x·Wᵀ + b over rows and its backward, as register-blocked products: what dense layers and
// attention's projections share on the CPU. An input that is mostly zeros (MNIST pixels, relu
// outputs) is multiplied through its nonzeros only, in the forward and in the weight gradient.
import { gemmNT, gemmTN, SparseRows, spmm, transpose } from './gemm.ts';

/** Below this fraction of nonzeros the sparse product beats the blocked one (MNIST-sized layers). */
let sparseBelow = 0.5;

/** Sets the fraction of nonzeros under which inputs are multiplied as sparse (0: never); returns the old one. The CPU benchmark times both paths. */
export function setSparseBelow(fraction: number): number {
  const old = sparseBelow;
  sparseBelow = fraction;
  return old;
}

/** x's nonzeros as compressed rows, or null when x is too dense for them to pay. x: f32[rows, n]. */
export function sparseInput(x: Float32Array, rows: number, n: number): SparseRows | null {
  const limit = Math.ceil(sparseBelow * rows * n) - 1;
  if (limit < 0) return null;
  const s = new SparseRows(rows, limit);
  return s.fromRows(x, rows, n, limit) ? s : null;
}

/** x [rows, n], w [m, n], b [m] or none → y [rows, m]; `sparse`: x's nonzeros (sparseInput). */
export function linearForward(x: Float32Array, rows: number, n: number, w: Float32Array, b: Float32Array | undefined, m: number, sparse: SparseRows | null = null): Float32Array {
  const y = new Float32Array(rows * m);
  if (sparse) {
    const wt = new Float32Array(n * m);
    transpose(w, wt, m, n);
    spmm(sparse, wt, m, y, m, 1);
  } else gemmNT(x, w, y, rows, m, n);
  if (b) for (let r = 0; r < rows; r++) for (let j = 0; j < m; j++) y[r * m + j] += b[j];
  return y;
}

export interface LinearBackwardOptions {
  withBias?: boolean;
  /** Compute dx (default true); false for a layer whose input is the model's data. */
  inputGrad?: boolean;
  /** x's nonzeros from the forward (sparseInput), for the weight gradient. */
  sparse?: SparseRows | null;
}

/** From dy [rows, m] and x [rows, n]: dx = dy·W (empty when not wanted), dW = dyᵀ·x, db = Σ dy (when wanted). */
export function linearBackward(x: Float32Array, dy: Float32Array, rows: number, n: number, w: Float32Array, m: number, opts: LinearBackwardOptions = {}): { dx: Float32Array; dw: Float32Array; db: Float32Array | null } {
  const { withBias = true, inputGrad = true, sparse = null } = opts;
  const dw = new Float32Array(m * n);
  if (sparse) {
    // dWᵀ [n, m] = xᵀ · dy, written transposed straight into dW [m, n].
    const cols = new SparseRows(n, sparse.start[sparse.rows]);
    cols.transposeOf(sparse);
    spmm(cols, dy, m, dw, 1, n);
  } else gemmTN(dy, x, dw, m, n, rows);
  let db: Float32Array | null = null;
  if (withBias) {
    db = new Float32Array(m);
    for (let r = 0; r < rows; r++) for (let j = 0; j < m; j++) db[j] += dy[r * m + j];
  }
  if (!inputGrad) return { dx: new Float32Array(0), dw, db };
  const wt = new Float32Array(n * m);
  transpose(w, wt, m, n);
  const dx = new Float32Array(rows * n);
  gemmNT(dy, wt, dx, rows, n, m);
  return { dx, dw, db };
}
