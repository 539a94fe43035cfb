// Typed wrapper for shaders/pool.wgsl: max and average pooling (window `size`, stride `stride`,
// no padding), forward and backward. The references are shared/layers/maxpool2d.ts and
// shared/layers/avgpool2d.ts; the window geometry is shared/layers/pool2d.ts.
import source from '../../../shaders/pool.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 256;

export type PoolOp = 'max' | 'avg';

type Entry = 'max_pool' | 'max_pool_backward' | 'avg_pool' | 'avg_pool_backward';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  max_pool: ['uniform', 'read', 'storage', 'storage'],
  max_pool_backward: ['uniform', 'read', 'storage', 'storage'],
  avg_pool: ['uniform', 'read', 'storage'],
  avg_pool_backward: ['uniform', 'read', 'storage'],
};

export function poolKernel(op: PoolOp, backward: boolean): Kernel {
  const entryPoint: Entry = `${op}_pool${backward ? '_backward' : ''}`;
  return { name: entryPoint, source, entryPoint, bindings: BINDINGS[entryPoint], overrides: { WG } };
}

/** One example's geometry: input [C, H, W], window size x size, stride (default size). */
export interface PoolShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
  size: number;
  stride?: number;
}

export interface PoolDims {
  ho: number;
  wo: number;
  stride: number;
}

/** Output height and width, as shared/layers/pool2d.ts computes them. */
export function poolDims(s: PoolShape): PoolDims {
  for (const [name, v] of Object.entries({ batch: s.batch, channels: s.channels, height: s.height, width: s.width, size: s.size, stride: s.stride ?? s.size })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`pool: ${name} must be a positive integer, got ${v}`);
  }
  const stride = s.stride ?? s.size;
  const ho = Math.floor((s.height - s.size) / stride) + 1;
  const wo = Math.floor((s.width - s.size) / stride) + 1;
  if (ho < 1 || wo < 1) throw new Error(`pool: a window of ${s.size} does not fit ${s.height}x${s.width}`);
  if (s.batch * s.channels * s.height * s.width >= 2 ** 32) throw new Error('pool: the input has 2^32 elements or more');
  return { ho, wo, stride };
}

function params(s: PoolShape, d: PoolDims): Uint32Array {
  return new Uint32Array([s.batch, s.channels, s.height, s.width, d.ho, d.wo, s.size, d.stride]);
}

export interface MaxPoolArgs extends PoolShape {
  /** f32[B, C, H, W]. */
  x: Binding;
  /** f32[B, C, Ho, Wo] output. */
  y: Binding;
  /** u32[B, C, Ho, Wo] output: the flat index into x of each window's maximum, kept for backward. */
  argmax: Binding;
}

/**
 * y = the maximum of each window, argmax = where it is. x: f32[B, C, H, W] -> y: f32[B, C, Ho, Wo],
 * argmax: u32[B, C, Ho, Wo].
 * @example maxPool(gpu, { x, y, argmax, batch: 64, channels: 8, height: 24, width: 24, size: 2 });
 */
export function maxPool(gpu: Gpu, a: MaxPoolArgs): Dispatch {
  const d = poolDims(a);
  return gpu.prepare({
    kernel: poolKernel('max', false),
    buffers: [a.x, a.y, a.argmax],
    uniforms: params(a, d),
    workgroups: linearWorkgroups(a.batch * a.channels * d.ho * d.wo, WG),
  });
}

export interface MaxPoolBackwardArgs extends PoolShape {
  /** f32[B, C, Ho, Wo] gradient of y. */
  dy: Binding;
  /** u32[B, C, Ho, Wo] from maxPool. */
  argmax: Binding;
  /** f32[B, C, H, W] output (overwritten). */
  dx: Binding;
}

/**
 * dx[e] = Σ dy over the windows whose maximum is e. dy: f32[B, C, Ho, Wo], argmax: u32[B, C, Ho, Wo]
 * -> dx: f32[B, C, H, W].
 * @example maxPoolBackward(gpu, { dy, argmax, dx, batch: 64, channels: 8, height: 24, width: 24, size: 2 });
 */
export function maxPoolBackward(gpu: Gpu, a: MaxPoolBackwardArgs): Dispatch {
  const d = poolDims(a);
  return gpu.prepare({
    kernel: poolKernel('max', true),
    buffers: [a.dy, a.dx, a.argmax],
    uniforms: params(a, d),
    workgroups: linearWorkgroups(a.batch * a.channels * a.height * a.width, WG),
  });
}

export interface AvgPoolArgs extends PoolShape {
  /** f32[B, C, H, W]. */
  x: Binding;
  /** f32[B, C, Ho, Wo] output. */
  y: Binding;
}

/**
 * y = the mean of each window. x: f32[B, C, H, W] -> y: f32[B, C, Ho, Wo].
 * @example avgPool(gpu, { x, y, batch: 64, channels: 8, height: 24, width: 24, size: 2 });
 */
export function avgPool(gpu: Gpu, a: AvgPoolArgs): Dispatch {
  const d = poolDims(a);
  return gpu.prepare({
    kernel: poolKernel('avg', false),
    buffers: [a.x, a.y],
    uniforms: params(a, d),
    workgroups: linearWorkgroups(a.batch * a.channels * d.ho * d.wo, WG),
  });
}

export interface AvgPoolBackwardArgs extends PoolShape {
  /** f32[B, C, Ho, Wo] gradient of y. */
  dy: Binding;
  /** f32[B, C, H, W] output (overwritten). */
  dx: Binding;
}

/**
 * dx = each window's dy / size², summed where windows overlap. dy: f32[B, C, Ho, Wo] -> dx: f32[B, C, H, W].
 * @example avgPoolBackward(gpu, { dy, dx, batch: 64, channels: 8, height: 24, width: 24, size: 2 });
 */
export function avgPoolBackward(gpu: Gpu, a: AvgPoolBackwardArgs): Dispatch {
  const d = poolDims(a);
  return gpu.prepare({
    kernel: poolKernel('avg', true),
    buffers: [a.dy, a.dx],
    uniforms: params(a, d),
    workgroups: linearWorkgroups(a.batch * a.channels * a.height * a.width, WG),
  });
}
