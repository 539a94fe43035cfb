// layernorm: PyTorch nn.LayerNorm(C) over the last dimension, biased variance, eps 1e-5 by
// default. weight [C] = 1, bias [C] = 0 at initialisation.
import { LayerError, onlyFields, registerLayer, shapeText, sizeOf, type LayerConfig, type Shape } from './layer.ts';

export interface LayerNormConfig extends LayerConfig {
  kind: 'layernorm';
  eps?: number;
}

const channels = (inShape: Shape) => {
  if (inShape.length === 0) throw new LayerError(`layernorm needs an input with a last dimension, got ${shapeText(inShape)}`);
  return inShape[inShape.length - 1];
};

registerLayer<LayerNormConfig>({
  kind: 'layernorm',
  check(cfg) {
    onlyFields(cfg, ['eps']);
    if (cfg.eps !== undefined && !(typeof cfg.eps === 'number' && cfg.eps > 0 && cfg.eps < 1)) throw new LayerError('layernorm: eps must be a number in (0, 1)');
  },
  outShape: (_cfg, inShape) => (channels(inShape), [...inShape]),
  params(_cfg, inShape) {
    const c = channels(inShape);
    return [
      { name: 'weight', shape: [c], init: { kind: 'constant', value: 1 } },
      { name: 'bias', shape: [c], init: { kind: 'constant', value: 0 } },
    ];
  },
  macs: (_cfg, inShape) => 5 * sizeOf(inShape),
  forward(cfg, inShape, p, x, batch) {
    const c = channels(inShape);
    const rows = (batch * sizeOf(inShape)) / c;
    const eps = cfg.eps ?? 1e-5;
    const [w, b] = p;
    const y = new Float32Array(rows * c);
    const xhat = new Float32Array(rows * c);
    const rstd = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let mean = 0;
      for (let k = 0; k < c; k++) mean += x[r * c + k];
      mean /= c;
      let v = 0;
      for (let k = 0; k < c; k++) v += (x[r * c + k] - mean) ** 2;
      const rs = 1 / Math.sqrt(v / c + eps);
      rstd[r] = rs;
      for (let k = 0; k < c; k++) {
        const h = (x[r * c + k] - mean) * rs;
        xhat[r * c + k] = h;
        y[r * c + k] = h * w[k] + b[k];
      }
    }
    return { y, cache: { xhat, rstd } };
  },
  backward(_cfg, inShape, p, cache, dy, batch) {
    const { xhat, rstd } = cache as { xhat: Float32Array; rstd: Float32Array };
    const c = channels(inShape);
    const rows = (batch * sizeOf(inShape)) / c;
    const [w] = p;
    const dx = new Float32Array(rows * c);
    const dw = new Float32Array(c);
    const db = new Float32Array(c);
    for (let r = 0; r < rows; r++) {
      let m1 = 0;
      let m2 = 0;
      for (let k = 0; k < c; k++) {
        const g = dy[r * c + k];
        const dh = g * w[k];
        dw[k] += g * xhat[r * c + k];
        db[k] += g;
        m1 += dh;
        m2 += dh * xhat[r * c + k];
      }
      m1 /= c;
      m2 /= c;
      for (let k = 0; k < c; k++) dx[r * c + k] = rstd[r] * (dy[r * c + k] * w[k] - m1 - xhat[r * c + k] * m2);
    }
    return { dx, dp: [dw, db] };
  },
});
