// Typed wrapper for shaders/conv2d.wgsl: 2-D convolution with stride and zero padding as im2col +
// matmul, forward and backward (the weight and bias gradients, and the input gradient where a layer
// needs it). The reference is shared/layers/conv2d.ts.
import source from '../../../shaders/conv2d.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';
import { matmul } from './matmul.ts';
import { colSum } from './reduce.ts';

const WG = 256;

type Entry = 'conv2d_im2col' | 'conv2d_rows_to_output' | 'conv2d_output_to_rows' | 'conv2d_col2im';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  conv2d_im2col: ['uniform', 'read', 'storage'],
  conv2d_rows_to_output: ['uniform', 'read', 'storage', 'read'],
  conv2d_output_to_rows: ['uniform', 'read', 'storage'],
  conv2d_col2im: ['uniform', 'read', 'storage'],
};

export function conv2dKernel(entryPoint: Entry): Kernel {
  return { name: entryPoint, source, entryPoint, bindings: BINDINGS[entryPoint], overrides: { WG } };
}

/** One example's input [C, H, W], `out` channels, a kernel x kernel window, stride and padding. */
export interface Conv2dShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
  out: number;
  kernel: number;
  /** Default 1. */
  stride?: number;
  /** Zeros added on each side; default 0. */
  padding?: number;
}

export interface Conv2dDims {
  ho: number;
  wo: number;
  stride: number;
  padding: number;
  /** B·Ho·Wo: rows of the im2col matrix. */
  positions: number;
  /** C·K·K: its columns, in the weight's (c, kh, kw) order. */
  taps: number;
}

/** Output height and width (as shared/layers/conv2d.ts computes them) and the im2col matrix's size. */
export function conv2dDims(s: Conv2dShape): Conv2dDims {
  const stride = s.stride ?? 1;
  const padding = s.padding ?? 0;
  for (const [name, v] of Object.entries({ batch: s.batch, channels: s.channels, height: s.height, width: s.width, out: s.out, kernel: s.kernel, stride })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`conv2d: ${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`conv2d: padding must be a non-negative integer, got ${padding}`);
  const ho = Math.floor((s.height + 2 * padding - s.kernel) / stride) + 1;
  const wo = Math.floor((s.width + 2 * padding - s.kernel) / stride) + 1;
  if (ho < 1 || wo < 1) throw new Error(`conv2d: kernel ${s.kernel}, stride ${stride}, padding ${padding} does not fit ${s.height}x${s.width}`);
  const positions = s.batch * ho * wo;
  const taps = s.channels * s.kernel * s.kernel;
  if (Math.max(positions * taps, positions * s.out, s.batch * s.channels * s.height * s.width) >= 2 ** 31) {
    throw new Error(`conv2d: the im2col matrix [${positions}, ${taps}] or another tensor has 2^31 elements or more; use smaller micro-batches`);
  }
  return { ho, wo, stride, padding, positions, taps };
}

function params(s: Conv2dShape, d: Conv2dDims): Uint32Array {
  return new Uint32Array([s.batch, s.channels, s.height, s.width, s.out, s.kernel, d.stride, d.padding, d.ho, d.wo]);
}

export interface Conv2dArgs extends Conv2dShape {
  /** f32[B, C, H, W]. */
  x: Binding;
  /** f32[O, C, K, K]. */
  weight: Binding;
  /** f32[O]. */
  bias: Binding;
  /** f32[B·Ho·Wo, C·K·K] output: the im2col matrix, kept for the weight gradient. */
  cols: Binding;
  /** f32[B·Ho·Wo, O] scratch: the product before its layout change. */
  rows: Binding;
  /** f32[B, O, Ho, Wo] output. */
  y: Binding;
}

/**
 * y = conv2d(x, weight) + bias. x: f32[B, C, H, W], weight: f32[O, C, K, K], bias: f32[O]
 * -> y: f32[B, O, Ho, Wo], keeping cols: f32[B·Ho·Wo, C·K·K]. Three dispatches, in order.
 * @example
 *   const s = { batch: 64, channels: 1, height: 28, width: 28, out: 8, kernel: 5 };
 *   const { positions, taps } = conv2dDims(s);
 *   const cols = gpu.buffer(positions * taps * 4), rows = gpu.buffer(positions * 8 * 4);
 *   gpu.submit(conv2d(gpu, { ...s, x, weight, bias, cols, rows, y }));
 */
export function conv2d(gpu: Gpu, a: Conv2dArgs): Dispatch[] {
  const d = conv2dDims(a);
  const uniforms = params(a, d);
  return [
    gpu.prepare({ kernel: conv2dKernel('conv2d_im2col'), buffers: [a.x, a.cols], uniforms, workgroups: linearWorkgroups(d.positions * a.channels * a.kernel, WG) }),
    matmul(gpu, { a: a.cols, b: a.weight, c: a.rows, m: d.positions, n: a.out, k: d.taps, transB: true }),
    gpu.prepare({ kernel: conv2dKernel('conv2d_rows_to_output'), buffers: [a.rows, a.y, a.bias], uniforms, workgroups: linearWorkgroups(d.positions * a.out, WG) }),
  ];
}

export interface Conv2dBackwardArgs extends Conv2dShape {
  /** f32[B, O, Ho, Wo] gradient of y. */
  dy: Binding;
  /** f32[B·Ho·Wo, C·K·K] from conv2d. */
  cols: Binding;
  /** f32[O, C, K, K]. */
  weight: Binding;
  /** f32[B·Ho·Wo, O] scratch: dy with one row per output position (conv2d's `rows` may be reused). */
  dyRows: Binding;
  /** f32[O, C, K, K] output. */
  dweight: Binding;
  /** f32[O] output. */
  dbias: Binding;
  /** Add into dweight and dbias (summing over micro-batches) instead of overwriting them. */
  accumulate?: boolean;
  /**
   * f32[B, C, H, W] output (overwritten), the input gradient; leave it out for a model's first
   * layer, whose input needs none. With it comes `dcols`.
   */
  dx?: Binding;
  /**
   * f32[B·Ho·Wo, C·K·K] scratch for the input gradient. It may be `cols` itself: the weight
   * gradient has read cols by the time this is written (cols then no longer holds the forward's).
   */
  dcols?: Binding;
}

/**
 * The gradients: dy: f32[B, O, Ho, Wo], cols: f32[B·Ho·Wo, C·K·K], weight: f32[O, C, K, K]
 * -> dweight: f32[O, C, K, K], dbias: f32[O], and dx: f32[B, C, H, W] when asked for.
 * Three dispatches, six with dx, in order.
 * @example gpu.submit(conv2dBackward(gpu, { ...s, dy, cols, weight, dyRows: rows, dweight, dbias, accumulate: true, dx, dcols: cols }));
 */
export function conv2dBackward(gpu: Gpu, a: Conv2dBackwardArgs): Dispatch[] {
  const d = conv2dDims(a);
  const uniforms = params(a, d);
  const accumulate = !!a.accumulate;
  const list = [
    gpu.prepare({ kernel: conv2dKernel('conv2d_output_to_rows'), buffers: [a.dy, a.dyRows], uniforms, workgroups: linearWorkgroups(d.positions * a.out, WG) }),
    // dW[O, CKK] = dYᵀ · cols; db = Σ_rows dY
    matmul(gpu, { a: a.dyRows, b: a.cols, c: a.dweight, m: a.out, n: d.taps, k: d.positions, transA: true, accumulate }),
    colSum(gpu, { x: a.dyRows, out: a.dbias, rows: d.positions, cols: a.out, accumulate }),
  ];
  if (a.dx === undefined) return list;
  if (a.dcols === undefined) throw new Error('conv2dBackward: dx needs a dcols scratch buffer');
  list.push(
    // dcols[B·P, CKK] = dY · W, then each input element gathers its taps.
    matmul(gpu, { a: a.dyRows, b: a.weight, c: a.dcols, m: d.positions, n: d.taps, k: a.out }),
    gpu.prepare({ kernel: conv2dKernel('conv2d_col2im'), buffers: [a.dcols, a.dx], uniforms, workgroups: linearWorkgroups(a.batch * a.channels * a.height * a.width, WG) }),
  );
  return list;
}
