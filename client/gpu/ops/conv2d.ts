// Typed wrapper for shaders/conv2d.wgsl: 2-D convolution with stride and zero padding, forward and
// its two backward passes (the input gradient; the weight and bias gradients). The reference is
// shared/layers/conv2d.ts.
import source from '../../../shaders/conv2d.wgsl?raw';
import { linearWorkgroups, MAX_WORKGROUPS_PER_DIM, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 64;
/** Adjacent columns per invocation in the forward and input-gradient passes (at most 8). */
const PX = 4;

type Entry = 'conv2d' | 'conv2d_backward_input' | 'conv2d_backward_weight' | 'conv2d_backward_bias';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  conv2d: ['uniform', 'read', 'read', 'read', 'storage'],
  conv2d_backward_input: ['uniform', 'read', 'read', 'storage'],
  conv2d_backward_weight: ['uniform', 'read', 'read', 'storage'],
  conv2d_backward_bias: ['uniform', 'read', 'storage'],
};

export function conv2dKernel(entryPoint: Entry, accumulate = false): Kernel {
  const gradient = entryPoint === 'conv2d_backward_weight' || entryPoint === 'conv2d_backward_bias';
  return {
    name: `${entryPoint}${accumulate ? '_acc' : ''}`,
    source,
    entryPoint,
    bindings: BINDINGS[entryPoint],
    overrides: gradient ? { WG, ACCUMULATE: accumulate ? 1 : 0 } : { WG, PX },
  };
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
}

/** Output height and width, as shared/layers/conv2d.ts computes them. */
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
  const largest = Math.max(s.batch * s.channels * s.height * s.width, s.batch * s.out * ho * wo, s.out * s.channels * s.kernel * s.kernel);
  if (largest >= 2 ** 31) throw new Error('conv2d: a tensor has 2^31 elements or more');
  return { ho, wo, stride, padding };
}

function params(s: Conv2dShape, d: Conv2dDims): Uint32Array {
  return new Uint32Array([s.batch, s.channels, s.height, s.width, s.out, s.kernel, d.stride, d.padding, d.ho, d.wo]);
}

/** Workgroups for `cells` invocations along x (folded into y) and `blocks` channel blocks along z. */
function cellWorkgroups(cells: number, blocks: number): [number, number, number] {
  const [x, y] = linearWorkgroups(cells, WG);
  if (blocks > MAX_WORKGROUPS_PER_DIM) throw new Error(`conv2d: ${blocks * 4} channels is past the dispatch limit`);
  return [x, y, blocks];
}

export interface Conv2dArgs extends Conv2dShape {
  /** f32[B, C, H, W]. */
  x: Binding;
  /** f32[O, C, K, K]. */
  weight: Binding;
  /** f32[O]. */
  bias: Binding;
  /** f32[B, O, Ho, Wo] output. */
  y: Binding;
}

/**
 * y = conv2d(x, weight) + bias. x: f32[B, C, H, W], weight: f32[O, C, K, K], bias: f32[O]
 * -> y: f32[B, O, Ho, Wo].
 * @example conv2d(gpu, { x, weight, bias, y, batch: 64, channels: 1, height: 28, width: 28, out: 8, kernel: 5 });
 */
export function conv2d(gpu: Gpu, a: Conv2dArgs): Dispatch {
  const d = conv2dDims(a);
  return gpu.prepare({
    kernel: conv2dKernel('conv2d'),
    buffers: [a.x, a.weight, a.bias, a.y],
    uniforms: params(a, d),
    workgroups: cellWorkgroups(a.batch * d.ho * Math.ceil(d.wo / PX), Math.ceil(a.out / 4)),
  });
}

export interface Conv2dBackwardInputArgs extends Conv2dShape {
  /** f32[B, O, Ho, Wo] gradient of y. */
  dy: Binding;
  /** f32[O, C, K, K]. */
  weight: Binding;
  /** f32[B, C, H, W] output (overwritten). */
  dx: Binding;
}

/**
 * The input gradient (skip it for a model's first layer). dy: f32[B, O, Ho, Wo], weight:
 * f32[O, C, K, K] -> dx: f32[B, C, H, W].
 * @example conv2dBackwardInput(gpu, { dy, weight, dx, batch: 64, channels: 8, height: 12, width: 12, out: 16, kernel: 5 });
 */
export function conv2dBackwardInput(gpu: Gpu, a: Conv2dBackwardInputArgs): Dispatch {
  const d = conv2dDims(a);
  return gpu.prepare({
    kernel: conv2dKernel('conv2d_backward_input'),
    buffers: [a.dy, a.weight, a.dx],
    uniforms: params(a, d),
    workgroups: cellWorkgroups(a.batch * a.height * Math.ceil(a.width / PX), Math.ceil(a.channels / 4)),
  });
}

export interface Conv2dBackwardParamsArgs extends Conv2dShape {
  /** f32[B, O, Ho, Wo] gradient of y. */
  dy: Binding;
  /** f32[B, C, H, W] the forward's input. */
  x: Binding;
  /** f32[O, C, K, K] output. */
  dweight: Binding;
  /** f32[O] output. */
  dbias: Binding;
  /** Add into dweight and dbias (summing over micro-batches) instead of overwriting them. */
  accumulate?: boolean;
}

/**
 * The weight and bias gradients, summed over the batch. dy: f32[B, O, Ho, Wo], x: f32[B, C, H, W]
 * -> dweight: f32[O, C, K, K], dbias: f32[O]. Two dispatches.
 * @example gpu.submit(conv2dBackwardParams(gpu, { dy, x, dweight, dbias, batch: 64, channels: 1, height: 28, width: 28, out: 8, kernel: 5, accumulate: true }));
 */
export function conv2dBackwardParams(gpu: Gpu, a: Conv2dBackwardParamsArgs): Dispatch[] {
  const d = conv2dDims(a);
  const uniforms = params(a, d);
  const accumulate = !!a.accumulate;
  const taps = a.channels * a.kernel * a.kernel;
  return [
    gpu.prepare({
      kernel: conv2dKernel('conv2d_backward_weight', accumulate),
      buffers: [a.dy, a.x, a.dweight],
      uniforms,
      workgroups: linearWorkgroups(Math.ceil(a.out / 4) * taps, 1),
    }),
    gpu.prepare({
      kernel: conv2dKernel('conv2d_backward_bias', accumulate),
      buffers: [a.dy, a.dbias],
      uniforms,
      workgroups: linearWorkgroups(a.out, 1),
    }),
  ];
}
