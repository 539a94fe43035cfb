// Typed wrappers for causal multi-head self-attention (PyTorch's nn.MultiheadAttention with a
// causal mask): the core kernels of shaders/attention.wgsl, and the whole layer forward and
// backward with its projections as matmuls. The reference is shared/layers/attention.ts.
import source from '../../../shaders/attention.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';
import { addInPlace } from './add.ts';
import { matmul } from './matmul.ts';
import { colSum } from './reduce.ts';

const WG = 64;

type Entry = 'attention_scores' | 'attention_values' | 'attention_backward_scores' | 'attention_backward_qkv';

const BINDINGS: Record<Entry, Kernel['bindings']> = {
  attention_scores: ['uniform', 'read', 'storage'],
  attention_values: ['uniform', 'read', 'read', 'storage'],
  attention_backward_scores: ['uniform', 'read', 'read', 'read', 'storage'],
  attention_backward_qkv: ['uniform', 'read', 'read', 'read', 'read', 'storage'],
};

export function attentionKernel(entryPoint: Entry): Kernel {
  return { name: entryPoint, source, entryPoint, bindings: BINDINGS[entryPoint], overrides: { WG } };
}

/** B examples of T positions and C channels, split into H heads of D = C / H channels. */
export interface AttentionShape {
  batch: number;
  t: number;
  c: number;
  heads: number;
}

/** Invocations per head and position in attention_values and attention_backward_qkv: 4 channels each. */
function channelBlocks(s: AttentionShape): number {
  return Math.ceil(s.c / s.heads / 4);
}

function params(s: AttentionShape): Uint8Array {
  for (const [name, v] of Object.entries({ batch: s.batch, t: s.t, c: s.c, heads: s.heads })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`attention: ${name} must be a positive integer, got ${v}`);
  }
  if (s.c % s.heads !== 0) throw new Error(`attention: ${s.c} channels do not split into ${s.heads} heads`);
  if (s.batch * s.t * 3 * s.c >= 2 ** 32 || s.batch * s.heads * s.t * s.t >= 2 ** 32) throw new Error('attention: a tensor has 2^32 elements or more');
  const d = s.c / s.heads;
  const buf = new ArrayBuffer(24);
  new Uint32Array(buf, 0, 5).set([s.batch, s.t, s.c, s.heads, d]);
  new Float32Array(buf, 20, 1)[0] = 1 / Math.sqrt(d);
  return new Uint8Array(buf);
}

export interface AttentionCoreArgs extends AttentionShape {
  /** f32[B*T, 3C]: q, k, v side by side in each row (the in-projection's output). */
  qkv: Binding;
  /** f32[B, H, T, T] output: the attention probabilities (0 above the diagonal); kept for backward. */
  probs: Binding;
  /** f32[B*T, C] output: each head's weighted values, heads side by side. */
  o: Binding;
}

/**
 * The core forward: probs = causal softmax(q·kᵀ/√D) per head, o = probs·v. qkv: f32[B*T, 3C]
 * -> probs: f32[B, H, T, T], o: f32[B*T, C]. Two dispatches.
 * @example gpu.submit(attentionCore(gpu, { qkv, probs, o, batch: 32, t: 64, c: 64, heads: 4 }));
 */
export function attentionCore(gpu: Gpu, a: AttentionCoreArgs): Dispatch[] {
  const uniforms = params(a);
  return [
    gpu.prepare({ kernel: attentionKernel('attention_scores'), buffers: [a.qkv, a.probs], uniforms, workgroups: linearWorkgroups(a.batch * a.heads * a.t, WG) }),
    gpu.prepare({ kernel: attentionKernel('attention_values'), buffers: [a.qkv, a.probs, a.o], uniforms, workgroups: linearWorkgroups(a.batch * a.t * a.heads * channelBlocks(a), WG) }),
  ];
}

export interface AttentionCoreBackwardArgs extends AttentionShape {
  /** f32[B*T, 3C] the forward's qkv. */
  qkv: Binding;
  /** f32[B, H, T, T] from attentionCore. */
  probs: Binding;
  /** f32[B*T, C] gradient of o. */
  dO: Binding;
  /** f32[B, H, T, T] scratch: the gradient of the scaled scores. */
  dscores: Binding;
  /** f32[B*T, 3C] output (overwritten): gradients of q, k and v. */
  dqkv: Binding;
}

/**
 * The core backward. qkv: f32[B*T, 3C], probs: f32[B, H, T, T], dO: f32[B*T, C]
 * -> dqkv: f32[B*T, 3C] (dscores: f32[B, H, T, T] scratch). Two dispatches.
 * @example gpu.submit(attentionCoreBackward(gpu, { qkv, probs, dO, dscores, dqkv, batch: 32, t: 64, c: 64, heads: 4 }));
 */
export function attentionCoreBackward(gpu: Gpu, a: AttentionCoreBackwardArgs): Dispatch[] {
  const uniforms = params(a);
  return [
    gpu.prepare({ kernel: attentionKernel('attention_backward_scores'), buffers: [a.qkv, a.probs, a.dO, a.dscores], uniforms, workgroups: linearWorkgroups(a.batch * a.heads * a.t, WG) }),
    gpu.prepare({ kernel: attentionKernel('attention_backward_qkv'), buffers: [a.qkv, a.probs, a.dO, a.dscores, a.dqkv], uniforms, workgroups: linearWorkgroups(a.batch * a.t * 3 * a.heads * channelBlocks(a), WG) }),
  ];
}

export interface AttentionArgs extends AttentionShape {
  /** f32[B*T, C]. */
  x: Binding;
  /** f32[3C, C] in_proj_weight. */
  inWeight: Binding;
  /** f32[3C] in_proj_bias. */
  inBias: Binding;
  /** f32[C, C] out_proj.weight. */
  outWeight: Binding;
  /** f32[C] out_proj.bias. */
  outBias: Binding;
  /** f32[B*T, 3C] output, kept for backward. */
  qkv: Binding;
  /** f32[B, H, T, T] output, kept for backward. */
  probs: Binding;
  /** f32[B*T, C] output, kept for backward. */
  o: Binding;
  /** f32[B*T, C] output. */
  y: Binding;
}

/**
 * The whole layer forward: qkv = x·inWeightᵀ + inBias; the core; y = o·outWeightᵀ + outBias.
 * x: f32[B*T, C] -> y: f32[B*T, C], keeping qkv f32[B*T, 3C], probs f32[B, H, T, T], o f32[B*T, C].
 * Six dispatches, in order.
 * @example gpu.submit(attention(gpu, { x, inWeight, inBias, outWeight, outBias, qkv, probs, o, y, batch: 32, t: 64, c: 64, heads: 4 }));
 */
export function attention(gpu: Gpu, a: AttentionArgs): Dispatch[] {
  const rows = a.batch * a.t;
  const c = a.c;
  return [
    matmul(gpu, { a: a.x, b: a.inWeight, c: a.qkv, m: rows, n: 3 * c, k: c, transB: true }),
    addInPlace(gpu, { out: a.qkv, b: a.inBias, n: rows * 3 * c, nb: 3 * c }),
    ...attentionCore(gpu, a),
    matmul(gpu, { a: a.o, b: a.outWeight, c: a.y, m: rows, n: c, k: c, transB: true }),
    addInPlace(gpu, { out: a.y, b: a.outBias, n: rows * c, nb: c }),
  ];
}

export interface AttentionBackwardArgs extends AttentionShape {
  /** f32[B*T, C] the forward's input. */
  x: Binding;
  /** f32[B*T, 3C], f32[B, H, T, T], f32[B*T, C]: what attention() kept. */
  qkv: Binding;
  probs: Binding;
  o: Binding;
  /** f32[3C, C] and f32[C, C]. */
  inWeight: Binding;
  outWeight: Binding;
  /** f32[B*T, C] gradient of y. */
  dy: Binding;
  /** Scratch: f32[B*T, C], f32[B, H, T, T], f32[B*T, 3C]. */
  dO: Binding;
  dscores: Binding;
  dqkv: Binding;
  /** f32[B*T, C] output (overwritten). */
  dx: Binding;
  /** Parameter gradients, in the order of params(): f32[3C, C], f32[3C], f32[C, C], f32[C]. */
  dInWeight: Binding;
  dInBias: Binding;
  dOutWeight: Binding;
  dOutBias: Binding;
  /** Add into the parameter gradients (summing over micro-batches) instead of overwriting them. */
  accumulate?: boolean;
}

/**
 * The whole layer backward: dy: f32[B*T, C] -> dx: f32[B*T, C] and the four parameter gradients.
 * Eight dispatches, in order.
 * @example gpu.submit(attentionBackward(gpu, { ...kept, inWeight, outWeight, dy, dO, dscores, dqkv, dx, dInWeight, dInBias, dOutWeight, dOutBias, batch: 32, t: 64, c: 64, heads: 4 }));
 */
export function attentionBackward(gpu: Gpu, a: AttentionBackwardArgs): Dispatch[] {
  const rows = a.batch * a.t;
  const c = a.c;
  const accumulate = !!a.accumulate;
  return [
    // out_proj: dW = dyᵀ·o, db = Σ_rows dy, dO = dy·W
    matmul(gpu, { a: a.dy, b: a.o, c: a.dOutWeight, m: c, n: c, k: rows, transA: true, accumulate }),
    colSum(gpu, { x: a.dy, out: a.dOutBias, rows, cols: c, accumulate }),
    matmul(gpu, { a: a.dy, b: a.outWeight, c: a.dO, m: rows, n: c, k: c }),
    ...attentionCoreBackward(gpu, a),
    // in_proj: dW = dqkvᵀ·x, db = Σ_rows dqkv, dx = dqkv·W
    matmul(gpu, { a: a.dqkv, b: a.x, c: a.dInWeight, m: 3 * c, n: c, k: rows, transA: true, accumulate }),
    colSum(gpu, { x: a.dqkv, out: a.dInBias, rows, cols: 3 * c, accumulate }),
    matmul(gpu, { a: a.dqkv, b: a.inWeight, c: a.dx, m: rows, n: c, k: 3 * c }),
  ];
}
