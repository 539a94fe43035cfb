// Tiny models and seeded examples for the local-mode (inner steps) tests, Node and browser alike:
// between them every layer kind a run can use (dense, conv2d, maxpool2d, avgpool2d, flatten, relu,
// gelu, layernorm, embedding, positional, attention in a transformer block's residuals).
import type { ExampleSource } from '../../client/worker/task-gradient.ts';
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { describeModel, initModelParams, type ModelDescription } from '../../shared/layers/sequence.ts';
import { expandLayers, mlpLayers } from '../../shared/layers/shorthand.ts';
import { createRng } from '../../shared/rng.ts';

export interface LocalCase {
  name: string;
  layers: LayerConfig[];
  inShape: number[];
  /** One example's inputs and labels from its index (the same on every backend). */
  example(i: number): { x: number[]; labels: number[] };
}

const VOCAB = 9;
const T = 5;

export const MLP_CASE: LocalCase = {
  name: 'MLP',
  layers: mlpLayers([7, 9, 5], 'gelu'),
  inShape: [7],
  example(i) {
    const rng = createRng(100 + i);
    return { x: Array.from({ length: 7 }, () => rng.uniform(-1, 1)), labels: [i % 5] };
  },
};

export const CNN_CASE: LocalCase = {
  name: 'CNN',
  // [1, 9, 9] → conv p1 [3, 9, 9] → maxpool [3, 4, 4] → conv k1 [4, 4, 4] → avgpool [4, 2, 2] → [16] → [6] → [4]
  layers: [
    { kind: 'conv2d', out: 3, kernel: 3, padding: 1 },
    { kind: 'relu' },
    { kind: 'maxpool2d', size: 2 },
    { kind: 'conv2d', out: 4, kernel: 1 },
    { kind: 'avgpool2d', size: 2 },
    { kind: 'flatten' },
    { kind: 'dense', out: 6 },
    { kind: 'gelu' },
    { kind: 'dense', out: 4 },
  ],
  inShape: [1, 9, 9],
  example(i) {
    const rng = createRng(200 + i);
    return { x: Array.from({ length: 81 }, () => rng.uniform(-1, 1)), labels: [i % 4] };
  },
};

export const TRANSFORMER_CASE: LocalCase = {
  name: 'transformer',
  layers: expandLayers([{ kind: 'embedding', vocab: VOCAB, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: VOCAB }]),
  inShape: [T],
  example(i) {
    // A window of a sequence and its next tokens: one label per position.
    const ids = Array.from({ length: T + 1 }, (_, p) => (i * 7 + p * (1 + (i % 3))) % VOCAB);
    return { x: ids.slice(0, T), labels: ids.slice(1) };
  },
};

export function sourceOf(c: LocalCase): ExampleSource {
  return {
    batch: async (indices) => {
      const ex = [...indices].map((i) => c.example(i));
      return { x: Float32Array.from(ex.flatMap((e) => e.x)), labels: Uint32Array.from(ex.flatMap((e) => e.labels)) };
    },
  };
}

export function modelOf(c: LocalCase): ModelDescription {
  return describeModel(c.layers, c.inShape);
}

/** Seeded initial parameters plus noise, so biases and LayerNorm's gains are not exactly 0 and 1. */
export function startParams(model: ModelDescription, seed: number): Float32Array {
  const p = initModelParams(model, seed);
  const rng = createRng(seed + 1);
  for (let i = 0; i < p.length; i++) p[i] += rng.uniform(-0.05, 0.05);
  return p;
}

/** Example indices 0, 1, 2, … shuffled by a seed (distinct examples per step). */
export function taskIndices(n: number, seed: number): Uint32Array {
  return Uint32Array.from(createRng(seed).shuffle(Array.from({ length: n }, (_, i) => i)));
}
