// positional: a learned position embedding added to a sequence. [T, C] → [T, C]; weight [T, C]
// ~ N(0, 1), as an nn.Embedding(T, C) looked up at positions 0..T−1 (docs/pytorch.md).
import { expectRank, onlyFields, registerLayer, sizeOf, type LayerConfig } from './layer.ts';

registerLayer<LayerConfig>({
  kind: 'positional',
  check: (cfg) => onlyFields(cfg, []),
  outShape(cfg, inShape) {
    expectRank(cfg, inShape, 2, 'a sequence [positions, channels]');
    return [...inShape];
  },
  params: (_cfg, inShape) => [{ name: 'weight', shape: [inShape[0], inShape[1]], init: { kind: 'normal', std: 1 } }],
  macs: (_cfg, inShape) => sizeOf(inShape),
  forward(_cfg, inShape, p, x, batch) {
    const n = sizeOf(inShape);
    const y = new Float32Array(batch * n);
    for (let b = 0; b < batch; b++) for (let i = 0; i < n; i++) y[b * n + i] = x[b * n + i] + p[0][i];
    return { y, cache: null };
  },
  backward(_cfg, inShape, _p, _cache, dy, batch) {
    const n = sizeOf(inShape);
    const dw = new Float32Array(n);
    for (let b = 0; b < batch; b++) for (let i = 0; i < n; i++) dw[i] += dy[b * n + i];
    return { dx: dy, dp: [dw] };
  },
});
