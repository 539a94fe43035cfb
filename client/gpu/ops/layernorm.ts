// Typed wrapper for shaders/layernorm.wgsl: layer normalisation over the last dimension, forward
// (keeping each row's mean and 1/std) and backward (the input gradient, and the weight and bias
// gradients). The reference is shared/layers/layernorm.ts.
import source from '../../../shaders/layernorm.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 64;
const COL_WG = 64;

/** PyTorch's default. */
export const LAYERNORM_EPS = 1e-5;

export function layerNormKernel(pass: 'forward' | 'input' | 'params', rows = 1, accumulate = false): Kernel {
  if (pass === 'params') {
    return {
      name: accumulate ? 'layernorm_backward_params_acc' : 'layernorm_backward_params',
      source,
      entryPoint: 'layernorm_backward_params',
      bindings: ['uniform', 'read', 'storage', 'read', 'storage', 'read'],
      overrides: { COL_WG, ROW_WG: rows >= 64 ? 4 : 1, ACCUMULATE: accumulate ? 1 : 0 },
    };
  }
  const forward = pass === 'forward';
  return {
    name: forward ? 'layernorm' : 'layernorm_backward_input',
    source,
    entryPoint: forward ? 'layernorm' : 'layernorm_backward_input',
    bindings: forward ? ['uniform', 'read', 'read', 'read', 'storage', 'storage'] : ['uniform', 'read', 'read', 'read', 'storage', 'read'],
    overrides: { WG },
  };
}

interface RowsCols {
  /** R: rows normalised (B·T for [T, C] inputs, B for [C]). */
  rows: number;
  /** C: the last dimension. */
  cols: number;
}

function params(a: RowsCols, eps: number): Uint8Array {
  if (!Number.isInteger(a.rows) || !Number.isInteger(a.cols) || a.rows < 1 || a.cols < 1) {
    throw new Error(`layerNorm needs positive integer rows and cols, got ${a.rows}x${a.cols}`);
  }
  if (a.rows * a.cols >= 2 ** 32) throw new Error('layerNorm: the input has 2^32 elements or more');
  if (!(eps > 0)) throw new Error(`layerNorm needs a positive eps, got ${eps}`);
  const buf = new ArrayBuffer(12);
  new Uint32Array(buf, 0, 2).set([a.rows, a.cols]);
  new Float32Array(buf, 8, 1)[0] = eps;
  return new Uint8Array(buf);
}

export interface LayerNormArgs extends RowsCols {
  /** f32[R, C]. */
  x: Binding;
  /** f32[C]. */
  weight: Binding;
  /** f32[C]. */
  bias: Binding;
  /** f32[R, C] output. */
  y: Binding;
  /** f32[2, R] output: each row's mean, then its 1/√(var + eps); kept for backward. */
  stats: Binding;
  eps?: number;
}

/**
 * y = (x - mean) / √(var + eps) · weight + bias over each row. x: f32[R, C], weight, bias: f32[C]
 * -> y: f32[R, C], stats: f32[2, R].
 * @example layerNorm(gpu, { x, weight, bias, y, stats, rows: B * T, cols: 64 });
 */
export function layerNorm(gpu: Gpu, a: LayerNormArgs): Dispatch {
  return gpu.prepare({
    kernel: layerNormKernel('forward'),
    buffers: [a.x, a.weight, a.bias, a.y, a.stats],
    uniforms: params(a, a.eps ?? LAYERNORM_EPS),
    workgroups: linearWorkgroups(a.rows, WG),
  });
}

export interface LayerNormBackwardArgs extends RowsCols {
  /** f32[R, C] the forward's input. */
  x: Binding;
  /** f32[C]. */
  weight: Binding;
  /** f32[2, R] from layerNorm. */
  stats: Binding;
  /** f32[R, C] gradient of y. */
  dy: Binding;
  /** f32[R, C] output (overwritten). */
  dx: Binding;
}

/**
 * The input gradient. x, dy: f32[R, C], weight: f32[C], stats: f32[2, R] -> dx: f32[R, C].
 * @example layerNormBackward(gpu, { x, weight, stats, dy, dx, rows: B * T, cols: 64 });
 */
export function layerNormBackward(gpu: Gpu, a: LayerNormBackwardArgs): Dispatch {
  return gpu.prepare({
    kernel: layerNormKernel('input'),
    buffers: [a.x, a.weight, a.dy, a.dx, a.stats],
    uniforms: params(a, LAYERNORM_EPS),
    workgroups: linearWorkgroups(a.rows, WG),
  });
}

export interface LayerNormParamsBackwardArgs extends RowsCols {
  /** f32[R, C] the forward's input. */
  x: Binding;
  /** f32[2, R] from layerNorm. */
  stats: Binding;
  /** f32[R, C] gradient of y. */
  dy: Binding;
  /** f32[C] output: Σ_r dy · x̂. */
  dweight: Binding;
  /** f32[C] output: Σ_r dy. */
  dbias: Binding;
  /** Add into dweight and dbias (summing over micro-batches) instead of overwriting them. */
  accumulate?: boolean;
}

/**
 * The weight and bias gradients, summed over rows. x, dy: f32[R, C], stats: f32[2, R]
 * -> dweight, dbias: f32[C].
 * @example layerNormParamsBackward(gpu, { x, stats, dy, dweight, dbias, rows: B * T, cols: 64, accumulate: true });
 */
export function layerNormParamsBackward(gpu: Gpu, a: LayerNormParamsBackwardArgs): Dispatch {
  return gpu.prepare({
    kernel: layerNormKernel('params', a.rows, !!a.accumulate),
    buffers: [a.x, a.dweight, a.dy, a.dbias, a.stats],
    uniforms: params(a, LAYERNORM_EPS),
    workgroups: linearWorkgroups(a.cols, COL_WG),
  });
}
