// Typed wrapper for shaders/bias-act.wgsl: bias + activation of a dense layer, forward and
// backward. The CPU reference is shared/reference/bias-act.ts.
import source from '../../../shaders/bias-act.wgsl?raw';
import type { Activation } from '../../../shared/reference/bias-act.ts';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

export type { Activation };

const WG = 256;
const ACT_CODE: Record<Activation, number> = { none: 0, relu: 1, gelu: 2 };

export function biasActKernel(act: Activation, backward: boolean): Kernel {
  if (!(act in ACT_CODE)) throw new Error(`unknown activation ${act}`);
  return {
    name: backward ? `bias_act_backward_${act}` : `bias_act_${act}`,
    source,
    entryPoint: backward ? 'bias_act_backward' : 'bias_act',
    bindings: backward ? ['uniform', 'read', 'read', 'storage', 'read'] : ['uniform', 'read', 'read', 'storage'],
    overrides: { WG, ACT: ACT_CODE[act] },
  };
}

export interface BiasActArgs {
  /** f32[B, C] input before the bias (a matmul's output). */
  x: Binding;
  /** f32[C]. */
  bias: Binding;
  /** f32[B, C] output act(x + bias); must not overlap x. */
  y: Binding;
  rows: number;
  cols: number;
  act: Activation;
}

/**
 * y = act(x + bias), bias broadcast over rows. x: f32[B, C], bias: f32[C] -> y: f32[B, C].
 * @example gpu.submit([biasAct(gpu, { x: z, bias: b, y: a, rows: 64, cols: 128, act: 'gelu' })]);
 */
export function biasAct(gpu: Gpu, a: BiasActArgs): Dispatch {
  checkShape(a.rows, a.cols);
  return gpu.prepare({
    kernel: biasActKernel(a.act, false),
    buffers: [a.x, a.bias, a.y],
    uniforms: new Uint32Array([a.rows, a.cols]),
    workgroups: linearWorkgroups(a.rows * a.cols, WG),
  });
}

export interface BiasActBackwardArgs {
  /** f32[B, C] the forward's pre-bias input. */
  x: Binding;
  /** f32[C]. */
  bias: Binding;
  /** f32[B, C] gradient of the output y. */
  dy: Binding;
  /** f32[B, C] gradient of x (and of x + bias; the bias gradient is colSum of it). */
  dx: Binding;
  rows: number;
  cols: number;
  act: Activation;
}

/**
 * dx = dy ⊙ act'(x + bias). x, dy: f32[B, C], bias: f32[C] -> dx: f32[B, C].
 * @example biasActBackward(gpu, { x: z, bias: b, dy: da, dx: dz, rows: 64, cols: 128, act: 'relu' });
 */
export function biasActBackward(gpu: Gpu, a: BiasActBackwardArgs): Dispatch {
  checkShape(a.rows, a.cols);
  return gpu.prepare({
    kernel: biasActKernel(a.act, true),
    buffers: [a.x, a.bias, a.dx, a.dy],
    uniforms: new Uint32Array([a.rows, a.cols]),
    workgroups: linearWorkgroups(a.rows * a.cols, WG),
  });
}

function checkShape(rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`bias-act needs positive integer rows and cols, got ${rows}x${cols}`);
  }
}
