// Plain-loop CPU reference of the optimizer update (shaders/optimizer.wgsl), with PyTorch's
// semantics for SGD, SGD with momentum, Adam and AdamW. The coordinator also steps its float32
// parameters with optimizerStepRef, so it stays a tight loop over Float32Arrays with no allocation.
//
// Shapes: params, grads, m, v all f32[N] (one flat parameter vector).

export type OptimizerKind = 'sgd' | 'momentum' | 'adam' | 'adamw';

export interface OptimizerConfig {
  kind: OptimizerKind;
  lr: number;
  /** SGD momentum μ (default 0.9). */
  momentum?: number;
  /** Momentum: Nesterov's form (PyTorch's SGD(nesterov=True)): p -= lr·(g' + μ·m). */
  nesterov?: boolean;
  /** Adam β1 (default 0.9). */
  beta1?: number;
  /** Adam β2 (default 0.999). */
  beta2?: number;
  /** Adam ε (default 1e-8). */
  eps?: number;
  /** L2 decay added to the gradient (sgd, momentum, adam) or decoupled (adamw). Default 0; adamw 0.01. */
  weightDecay?: number;
}

/** Optimizer state vectors per parameter: 0 (sgd), 1 (momentum: m), 2 (adam, adamw: m, v). */
export function optimizerStateCount(kind: OptimizerKind): 0 | 1 | 2 {
  switch (kind) {
    case 'sgd':
      return 0;
    case 'momentum':
      return 1;
    case 'adam':
    case 'adamw':
      return 2;
  }
}

/** The scalars of step t, derived once on the CPU (the kernel receives them as f32 uniforms). */
export interface OptimizerScalars {
  /** 1 on the first step: state is taken as zero (PyTorch's first momentum buffer is g'). */
  first: number;
  lr: number;
  /** Weight decay added to the gradient (0 for adamw). */
  l2: number;
  /** Factor applied to p before the update: 1 - lr·wd for adamw, else 1. */
  decay: number;
  momentum: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** lr / (1 - β1^t). */
  stepSize: number;
  /** √(1 - β2^t). */
  bc2Sqrt: number;
}

/** Fills the defaults and derives the step-t scalars. t counts from 1. */
export function optimizerScalars(config: OptimizerConfig, t: number): OptimizerScalars {
  if (!Number.isInteger(t) || t < 1) throw new Error(`optimizer step t must be an integer >= 1, got ${t}`);
  const beta1 = config.beta1 ?? 0.9;
  const beta2 = config.beta2 ?? 0.999;
  const wd = config.weightDecay ?? (config.kind === 'adamw' ? 0.01 : 0);
  const decoupled = config.kind === 'adamw';
  return {
    first: t === 1 ? 1 : 0,
    lr: config.lr,
    l2: decoupled ? 0 : wd,
    decay: decoupled ? 1 - config.lr * wd : 1,
    momentum: config.momentum ?? 0.9,
    beta1,
    beta2,
    eps: config.eps ?? 1e-8,
    stepSize: config.lr / (1 - beta1 ** t),
    bc2Sqrt: Math.sqrt(1 - beta2 ** t),
  };
}

/**
 * One optimizer step t (from 1) on a flat parameter vector, in place:
 *   sgd:      p -= lr·(g + wd·p)
 *   momentum: g' = g + wd·p; m = g' at t = 1, else μ·m + g'; p -= lr·m (nesterov: p -= lr·(g' + μ·m))
 *   adam:     g' = g + wd·p; m = β1·m + (1-β1)·g'; v = β2·v + (1-β2)·g'²;
 *             p -= lr/(1-β1^t) · m / (√v / √(1-β2^t) + ε)     (PyTorch's arrangement)
 *   adamw:    p *= 1 - lr·wd; then adam with g' = g.
 * At t = 1 the state is taken as zero whatever m and v hold.
 * params, grads, m, v: f32[N]. m is needed by momentum, adam, adamw; v by adam, adamw.
 * @example const p = new Float32Array([1]); optimizerStepRef(p, new Float32Array([0.5]), {}, { kind: 'sgd', lr: 0.1 }, 1); // p = [0.95]
 */
export function optimizerStepRef(
  params: Float32Array,
  grads: ArrayLike<number>,
  state: { m?: Float32Array; v?: Float32Array },
  config: OptimizerConfig,
  t: number,
): void {
  const n = params.length;
  if (grads.length !== n) throw new Error(`optimizerStepRef: grads has ${grads.length} values, params ${n}`);
  const s = optimizerScalars(config, t);
  const { m, v } = state;
  const needs = optimizerStateCount(config.kind);
  if (needs >= 1 && m?.length !== n) throw new Error(`optimizerStepRef: ${config.kind} needs state m of ${n} values`);
  if (needs >= 2 && v?.length !== n) throw new Error(`optimizerStepRef: ${config.kind} needs state v of ${n} values`);

  if (config.kind === 'sgd') {
    for (let i = 0; i < n; i++) params[i] -= s.lr * (grads[i] + s.l2 * params[i]);
  } else if (config.kind === 'momentum') {
    const buf = m!;
    for (let i = 0; i < n; i++) {
      const g = grads[i] + s.l2 * params[i];
      buf[i] = s.first ? g : s.momentum * buf[i] + g;
      params[i] -= s.lr * (config.nesterov ? g + s.momentum * buf[i] : buf[i]);
    }
  } else {
    const m1 = m!;
    const m2 = v!;
    for (let i = 0; i < n; i++) {
      const g = grads[i] + s.l2 * params[i];
      m1[i] = (s.first ? 0 : s.beta1 * m1[i]) + (1 - s.beta1) * g;
      m2[i] = (s.first ? 0 : s.beta2 * m2[i]) + (1 - s.beta2) * g * g;
      params[i] = params[i] * s.decay - (s.stepSize * m1[i]) / (Math.sqrt(m2[i]) / s.bc2Sqrt + s.eps);
    }
  }
}
