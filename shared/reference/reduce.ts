// Plain-loop CPU reference of the reductions (shaders/reduce.wgsl): column sums (the bias
// gradient) and per-row sum / mean / max. Sums run in float64; results are stored in float32.
import { checkLength } from './shapes.ts';

export type ReduceOp = 'sum' | 'mean' | 'max';

/**
 * out[c] = Σ_r x[r, c]. x: f32[B, C] -> out: f32[C].
 * @example colSumRef(new Float32Array([1, 2, 3, 4]), 2, 2); // [4, 6]
 */
export function colSumRef(x: ArrayLike<number>, rows: number, cols: number): Float32Array {
  checkLength('colSumRef x', x, rows * cols);
  const out = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * cols + c];
    out[c] = sum;
  }
  return out;
}

/**
 * out[r] = op over c of x[r, c]. x: f32[B, C] -> out: f32[B]; rows = 1 reduces a whole vector.
 * @example reduceRef(new Float32Array([1, 2, 3, 4]), 2, 2, 'max'); // [2, 4]
 */
export function reduceRef(x: ArrayLike<number>, rows: number, cols: number, op: ReduceOp): Float32Array {
  checkLength('reduceRef x', x, rows * cols);
  if (cols < 1) throw new Error('reduceRef: a row needs at least one value');
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    if (op === 'max') {
      let max = x[base];
      for (let c = 1; c < cols; c++) max = Math.max(max, x[base + c]);
      out[r] = max;
    } else {
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += x[base + c];
      out[r] = op === 'mean' ? sum / cols : sum;
    }
  }
  return out;
}
