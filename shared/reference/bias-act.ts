// Plain-loop CPU reference of the bias + activation op (shaders/bias-act.wgsl), forward and
// backward, with the scalar activations and their derivatives. Shapes follow ./shapes.ts.
import { checkLength } from './shapes.ts';

export type Activation = 'relu' | 'gelu' | 'none';

/** √(2/π) and the cubic coefficient of the tanh approximation of GELU (PyTorch approximate='tanh'). */
export const GELU_K = 0.7978845608028654;
export const GELU_A = 0.044715;
/**
 * Past |v| > 10, tanh-GELU equals relu to within 1e-35 (tanh(u) is ±1 to f64 precision there), so
 * both the reference and the kernel switch to the saturated form: no overflow of v³ and no ∞·0.
 */
export const GELU_SATURATION = 10;

/** act(v) for one value. gelu(v) = ½·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))). */
export function activate(v: number, act: Activation): number {
  switch (act) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'gelu':
      if (Math.abs(v) > GELU_SATURATION) return v > 0 ? v : 0;
      return 0.5 * v * (1 + Math.tanh(GELU_K * (v + GELU_A * v * v * v)));
    case 'none':
      return v;
  }
}

/** act'(v) for one value (relu'(0) = 0, as in PyTorch). */
export function activateGrad(v: number, act: Activation): number {
  switch (act) {
    case 'relu':
      return v > 0 ? 1 : 0;
    case 'gelu': {
      if (Math.abs(v) > GELU_SATURATION) return v > 0 ? 1 : 0;
      const t = Math.tanh(GELU_K * (v + GELU_A * v * v * v));
      return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_K * (1 + 3 * GELU_A * v * v);
    }
    case 'none':
      return 1;
  }
}

/**
 * y[r, c] = act(x[r, c] + bias[c]).
 * x: f32[B, C], bias: f32[C] -> y: f32[B, C] (rows = B, cols = C).
 * @example biasActRef(new Float32Array([-1, 2]), new Float32Array([0.5]), 2, 1, 'relu'); // [0, 2.5]
 */
export function biasActRef(x: ArrayLike<number>, bias: ArrayLike<number>, rows: number, cols: number, act: Activation): Float32Array {
  checkLength('biasActRef x', x, rows * cols);
  checkLength('biasActRef bias', bias, cols);
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) y[r * cols + c] = activate(x[r * cols + c] + bias[c], act);
  }
  return y;
}

/**
 * dx[r, c] = dy[r, c] · act'(x[r, c] + bias[c]), x being the forward's pre-bias input.
 * x: f32[B, C], bias: f32[C], dy: f32[B, C] -> dx: f32[B, C]. (The bias gradient is colSum(dx).)
 */
export function biasActBackwardRef(
  x: ArrayLike<number>,
  bias: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  act: Activation,
): Float32Array {
  checkLength('biasActBackwardRef x', x, rows * cols);
  checkLength('biasActBackwardRef bias', bias, cols);
  checkLength('biasActBackwardRef dy', dy, rows * cols);
  const dx = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      dx[i] = dy[i] * activateGrad(x[i] + bias[c], act);
    }
  }
  return dx;
}
