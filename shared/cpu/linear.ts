// y = x·Wᵀ + b over rows and its backward, as register-blocked products: what dense layers and
// attention's projections share on the CPU.
import { gemmNT, gemmTN, transpose } from './gemm.ts';

/** x [rows, n], w [m, n], b [m] or none → y [rows, m]. */
export function linearForward(x: Float32Array, rows: number, n: number, w: Float32Array, b: Float32Array | undefined, m: number): Float32Array {
  const y = new Float32Array(rows * m);
  gemmNT(x, w, y, rows, m, n);
  if (b) for (let r = 0; r < rows; r++) for (let j = 0; j < m; j++) y[r * m + j] += b[j];
  return y;
}

/** From dy [rows, m] and x [rows, n]: dx = dy·W, dW = dyᵀ·x, db = Σ dy (when wanted). */
export function linearBackward(x: Float32Array, dy: Float32Array, rows: number, n: number, w: Float32Array, m: number, withBias = true): { dx: Float32Array; dw: Float32Array; db: Float32Array | null } {
  const dw = new Float32Array(m * n);
  gemmTN(dy, x, dw, m, n, rows);
  let db: Float32Array | null = null;
  if (withBias) {
    db = new Float32Array(m);
    for (let r = 0; r < rows; r++) for (let j = 0; j < m; j++) db[j] += dy[r * m + j];
  }
  const wt = new Float32Array(n * m);
  transpose(w, wt, m, n);
  const dx = new Float32Array(rows * n);
  gemmNT(dy, wt, dx, rows, n, m);
  return { dx, dw, db };
}
