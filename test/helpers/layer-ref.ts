// Runs one layer kind's plain-loop reference (shared/layers/) forward and backward, the oracle the
// WebGPU kernel tests compare against. Random inputs come from the seeded rng.
import { layerKind, type LayerConfig, type Shape } from '../../shared/layers/index.ts';

export interface LayerRefResult {
  y: Float32Array;
  /** The forward's cache, as the reference keeps it (argmax, statistics, probabilities...). */
  cache: unknown;
  dx: Float32Array;
  /** Parameter gradients in the order of params(). */
  dp: Float32Array[];
}

/** Forward with params p on x [B, ...inShape], then backward of dy [B, ...outShape]. */
export function runLayerRef(cfg: LayerConfig, inShape: Shape, p: Float32Array[], x: Float32Array, batch: number, dy: Float32Array): LayerRefResult {
  const kind = layerKind(cfg.kind);
  kind.check(cfg);
  const f = kind.forward(cfg, inShape, p, x, batch);
  const b = kind.backward(cfg, inShape, p, f.cache, dy, batch);
  return { y: f.y, cache: f.cache, dx: b.dx, dp: b.dp };
}
