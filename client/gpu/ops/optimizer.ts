// Typed wrapper for shaders/optimizer.wgsl: one dispatch updates a whole flat parameter vector
// in place (SGD, momentum, Adam, AdamW with PyTorch's semantics). The CPU reference, which the
// coordinator also steps with, is shared/reference/optimizer.ts.
import source from '../../../shaders/optimizer.wgsl?raw';
import {
  optimizerScalars,
  optimizerStateCount,
  type OptimizerConfig,
  type OptimizerKind,
} from '../../../shared/reference/optimizer.ts';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

export type { OptimizerConfig, OptimizerKind };
export { optimizerStateCount };

const WG = 256;
const ENTRY: Record<OptimizerKind, string> = { sgd: 'sgd_step', momentum: 'momentum_step', adam: 'adam_step', adamw: 'adam_step' };

export function optimizerKernel(kind: OptimizerKind): Kernel {
  if (!(kind in ENTRY)) throw new Error(`unknown optimizer ${kind}`);
  const state = optimizerStateCount(kind);
  return {
    name: ENTRY[kind],
    source,
    entryPoint: ENTRY[kind],
    bindings: ['uniform', 'storage', 'read', ...Array<'storage'>(state).fill('storage')],
    overrides: { WG },
  };
}

export interface OptimizerStepArgs {
  /** f32[N], updated in place. */
  params: Binding;
  /** f32[N]. */
  grads: Binding;
  /** f32[N] momentum buffer (momentum) or first moment (adam, adamw); zero-filled before step 1. */
  m?: Binding;
  /** f32[N] second moment (adam, adamw). */
  v?: Binding;
  count: number;
  config: OptimizerConfig;
}

/** Each prepared dispatch's parameter count, for setOptimizerStep to rewrite the uniforms. */
const counts = new WeakMap<Dispatch, number>();

/**
 * Prepares the update of `count` parameters, with the uniforms of step t = 1; before each later
 * submit call setOptimizerStep. m and v are used only by the kinds that need them
 * (optimizerStateCount: sgd 0, momentum 1, adam and adamw 2).
 * @example const d = optimizerStep(gpu, { params, grads, m, v, count, config: { kind: 'adamw', lr: 1e-3 } });
 *          setOptimizerStep(gpu, d, config, ++t); gpu.submit([d]);
 */
export function optimizerStep(gpu: Gpu, a: OptimizerStepArgs): Dispatch {
  if (!Number.isInteger(a.count) || a.count < 1) throw new Error(`optimizerStep needs a positive integer count, got ${a.count}`);
  const state = optimizerStateCount(a.config.kind);
  const buffers: Binding[] = [a.params, a.grads];
  if (state >= 1) {
    if (!a.m) throw new Error(`optimizer ${a.config.kind} needs state buffer m`);
    buffers.push(a.m);
  }
  if (state >= 2) {
    if (!a.v) throw new Error(`optimizer ${a.config.kind} needs state buffer v`);
    buffers.push(a.v);
  }
  const d = gpu.prepare({
    kernel: optimizerKernel(a.config.kind),
    buffers,
    uniforms: optimizerUniforms(a.count, a.config, 1),
    workgroups: linearWorkgroups(a.count, WG),
  });
  counts.set(d, a.count);
  return d;
}

/**
 * Writes the uniforms of step t (from 1) into a dispatch made by optimizerStep. The config may
 * differ from the one it was prepared with in lr and the other scalars, not in kind.
 */
export function setOptimizerStep(gpu: Gpu, dispatch: Dispatch, config: OptimizerConfig, t: number): void {
  const count = counts.get(dispatch);
  if (count === undefined) throw new Error(`dispatch ${dispatch.label} was not prepared by optimizerStep`);
  if (dispatch.label !== ENTRY[config.kind]) throw new Error(`dispatch ${dispatch.label} cannot run optimizer ${config.kind}`);
  gpu.setUniforms(dispatch, optimizerUniforms(count, config, t));
}

/** The Params struct of optimizer.wgsl: two u32 then eleven f32 (rounded from float64 here). */
function optimizerUniforms(count: number, config: OptimizerConfig, t: number): Uint8Array {
  const s = optimizerScalars(config, t);
  const bytes = new ArrayBuffer(64);
  new Uint32Array(bytes, 0, 2).set([count, s.first]);
  new Float32Array(bytes, 8, 11).set([
    s.lr,
    s.l2,
    s.decay,
    s.momentum,
    s.beta1,
    s.beta2,
    1 - s.beta1,
    1 - s.beta2,
    s.eps,
    s.stepSize,
    s.bc2Sqrt,
  ]);
  return new Uint8Array(bytes);
}
