// The layer cases every implementation of a layer kind is checked on (the reference against
// finite differences, the fast CPU kernels and the WebGPU kernels against the reference): small,
// awkward shapes (odd sizes, stride and padding, one-row batches, one and several heads).
import type { LayerConfig } from '../../shared/layers/layer.ts';
import type { createRng } from '../../shared/rng.ts';

type Rng = ReturnType<typeof createRng>;

export interface LayerCase {
  name: string;
  config: LayerConfig;
  inShape: number[];
  batch: number;
  /** Input values (default: uniform ±1). */
  input?: (n: number, rng: Rng) => Float32Array;
  /** Inputs are not differentiable (token ids). */
  noInputGrad?: boolean;
}

export function layerCaseInput(c: LayerCase, n: number, rng: Rng): Float32Array {
  return c.input ? c.input(n, rng) : Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

const distinct = (n: number, rng: Rng) => {
  // Values spaced 0.05 apart in random order: no ties for max pooling, no values near relu's kink.
  const v = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05 + 0.025);
  return rng.shuffle(v);
};

export const LAYER_CASES: LayerCase[] = [
  { name: 'dense [7] -> 5', config: { kind: 'dense', out: 5 }, inShape: [7], batch: 3 },
  { name: 'dense over positions [3, 4] -> 6, no bias', config: { kind: 'dense', out: 6, bias: false }, inShape: [3, 4], batch: 2 },
  { name: 'relu', config: { kind: 'relu' }, inShape: [2, 3, 3], batch: 2, input: distinct },
  { name: 'gelu', config: { kind: 'gelu' }, inShape: [7], batch: 3 },
  { name: 'flatten', config: { kind: 'flatten' }, inShape: [2, 3, 2], batch: 2 },
  { name: 'conv2d 3x3 on [2, 5, 6] -> 3', config: { kind: 'conv2d', out: 3, kernel: 3 }, inShape: [2, 5, 6], batch: 2 },
  { name: 'conv2d stride 2 padding 1', config: { kind: 'conv2d', out: 2, kernel: 3, stride: 2, padding: 1 }, inShape: [1, 7, 5], batch: 1 },
  { name: 'conv2d 1x1', config: { kind: 'conv2d', out: 4, kernel: 1 }, inShape: [3, 2, 2], batch: 3 },
  { name: 'maxpool2d 2', config: { kind: 'maxpool2d', size: 2 }, inShape: [2, 5, 4], batch: 2, input: distinct },
  { name: 'maxpool2d 3 stride 1', config: { kind: 'maxpool2d', size: 3, stride: 1 }, inShape: [1, 4, 5], batch: 1, input: distinct },
  { name: 'avgpool2d 2', config: { kind: 'avgpool2d', size: 2 }, inShape: [3, 4, 5], batch: 2 },
  { name: 'layernorm [3, 7]', config: { kind: 'layernorm' }, inShape: [3, 7], batch: 2 },
  { name: 'layernorm [5]', config: { kind: 'layernorm', eps: 1e-3 }, inShape: [5], batch: 1 },
  { name: 'embedding', config: { kind: 'embedding', vocab: 7, dim: 3 }, inShape: [5], batch: 2, input: (n, rng) => Float32Array.from({ length: n }, () => rng.int(7)), noInputGrad: true },
  { name: 'positional', config: { kind: 'positional' }, inShape: [4, 3], batch: 2 },
  { name: 'attention 1 head', config: { kind: 'attention', heads: 1 }, inShape: [3, 4], batch: 2 },
  { name: 'attention 2 heads, 5 positions', config: { kind: 'attention', heads: 2 }, inShape: [5, 6], batch: 1 },
  { name: 'residual(layernorm, dense)', config: { kind: 'residual', layers: [{ kind: 'layernorm' }, { kind: 'dense', out: 4 }] }, inShape: [3, 4], batch: 2 },
];

