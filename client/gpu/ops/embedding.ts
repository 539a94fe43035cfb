// Typed wrapper for shaders/embedding.wgsl: token embedding lookup (gather) and its weight gradient
// (a deterministic scatter-add). The reference is shared/layers/embedding.ts.
import source from '../../../shaders/embedding.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 64;

export function embeddingKernel(backward: boolean, accumulate = false): Kernel {
  return {
    name: backward ? `embedding_backward${accumulate ? '_acc' : ''}` : 'embedding',
    source,
    entryPoint: backward ? 'embedding_backward' : 'embedding',
    bindings: ['uniform', 'read', 'read', 'storage'],
    overrides: backward ? { WG, ACCUMULATE: accumulate ? 1 : 0 } : { WG },
  };
}

interface EmbeddingShape {
  /** N: token positions (B·T). */
  positions: number;
  /** D: embedding width. */
  dim: number;
  /** V: vocabulary size. */
  vocab: number;
}

function params(s: EmbeddingShape): Uint32Array {
  for (const [name, v] of Object.entries({ positions: s.positions, dim: s.dim, vocab: s.vocab })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`embedding: ${name} must be a positive integer, got ${v}`);
  }
  if (s.vocab > 2 ** 24) throw new Error(`embedding: token ids travel as float32, exact only below 2^24; vocab is ${s.vocab}`);
  if (Math.max(s.positions, s.vocab) * s.dim >= 2 ** 32) throw new Error('embedding: a tensor has 2^32 elements or more');
  return new Uint32Array([s.positions, s.dim, s.vocab]);
}

export interface EmbeddingArgs extends EmbeddingShape {
  /** f32[N] token ids (integers in [0, V) as float32; any other value gives a row of zeros). */
  ids: Binding;
  /** f32[V, D]. */
  weight: Binding;
  /** f32[N, D] output. */
  y: Binding;
}

/**
 * y[i] = weight[ids[i]]. ids: f32[N], weight: f32[V, D] -> y: f32[N, D]. The reference throws on
 * an id outside [0, V); the kernel cannot, so it writes zeros: check ids where they enter.
 * @example embedding(gpu, { ids, weight, y, positions: B * T, dim: 64, vocab: 83 });
 */
export function embedding(gpu: Gpu, a: EmbeddingArgs): Dispatch {
  return gpu.prepare({
    kernel: embeddingKernel(false),
    buffers: [a.ids, a.weight, a.y],
    uniforms: params(a),
    workgroups: linearWorkgroups(a.positions * a.dim, WG),
  });
}

export interface EmbeddingBackwardArgs extends EmbeddingShape {
  /** f32[N] the forward's token ids. */
  ids: Binding;
  /** f32[N, D] gradient of y. */
  dy: Binding;
  /** f32[V, D] output: each row the sum of dy over the positions holding that token. */
  dweight: Binding;
  /** Add into dweight (summing over micro-batches) instead of overwriting it. */
  accumulate?: boolean;
}

/**
 * dweight[v] (+)= Σ_{i: ids[i] = v} dy[i]. ids: f32[N], dy: f32[N, D] -> dweight: f32[V, D].
 * Token ids have no gradient. Deterministic: each (v, k) sums its positions in order.
 * @example embeddingBackward(gpu, { ids, dy, dweight, positions: B * T, dim: 64, vocab: 83, accumulate: true });
 */
export function embeddingBackward(gpu: Gpu, a: EmbeddingBackwardArgs): Dispatch {
  return gpu.prepare({
    kernel: embeddingKernel(true, !!a.accumulate),
    buffers: [a.ids, a.dy, a.dweight],
    uniforms: params(a),
    workgroups: linearWorkgroups(a.vocab * Math.ceil(a.dim / 4), WG),
  });
}
