// embedding: PyTorch nn.Embedding(vocab, dim). Token ids [T] (float32 values, exact below 2^24)
// → [T, dim]; weight [vocab, dim] ~ N(0, 1). An id outside [0, vocab) is an error, not a silent zero.
import { expectRank, intField, LayerError, onlyFields, registerLayer, type LayerConfig } from './layer.ts';

export interface EmbeddingConfig extends LayerConfig {
  kind: 'embedding';
  vocab: number;
  dim: number;
}

registerLayer<EmbeddingConfig>({
  kind: 'embedding',
  check(cfg) {
    onlyFields(cfg, ['vocab', 'dim']);
    intField(cfg, 'vocab', { max: 1 << 20 });
    intField(cfg, 'dim', { max: 65536 });
  },
  outShape(cfg, inShape) {
    expectRank(cfg, inShape, 1, 'token ids [positions]');
    return [inShape[0], cfg.dim];
  },
  params: (cfg) => [{ name: 'weight', shape: [cfg.vocab, cfg.dim], init: { kind: 'normal', std: 1 } }],
  macs: (cfg, inShape) => inShape[0] * cfg.dim,
  forward(cfg, inShape, p, x, batch) {
    const n = batch * inShape[0];
    const d = cfg.dim;
    const [w] = p;
    const y = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const id = x[i];
      if (!(Number.isInteger(id) && id >= 0 && id < cfg.vocab)) throw new LayerError(`embedding: token id ${id} at position ${i} is outside [0, ${cfg.vocab})`);
      y.set(w.subarray(id * d, id * d + d), i * d);
    }
    return { y, cache: x };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const x = cache as Float32Array;
    const n = batch * inShape[0];
    const d = cfg.dim;
    const dw = new Float32Array(p[0].length);
    for (let i = 0; i < n; i++) {
      const id = x[i];
      for (let k = 0; k < d; k++) dw[id * d + k] += dy[i * d + k];
    }
    // Token ids have no gradient.
    return { dx: new Float32Array(n), dp: [dw] };
  },
});
