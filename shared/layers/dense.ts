// dense: PyTorch nn.Linear over the last dimension. [..., in] → [..., out]; weight [out, in],
// bias [out]; both ~ U(±1/√in) (PyTorch's default).
import { intField, LayerError, onlyFields, registerLayer, shapeText, sizeOf, type LayerConfig, type Shape } from './layer.ts';

export interface DenseConfig extends LayerConfig {
  kind: 'dense';
  out: number;
  bias?: boolean;
}

const lastDim = (cfg: DenseConfig, inShape: Shape) => {
  if (inShape.length === 0 || inShape.length > 2) throw new LayerError(`dense takes [features] or [positions, features], got ${shapeText(inShape)}: add a flatten before it`);
  return inShape[inShape.length - 1];
};

registerLayer<DenseConfig>({
  kind: 'dense',
  check(cfg) {
    onlyFields(cfg, ['out', 'bias']);
    intField(cfg, 'out', { max: 65536 });
    if (cfg.bias !== undefined && typeof cfg.bias !== 'boolean') throw new LayerError(`dense: bias must be true or false`);
  },
  outShape: (cfg, inShape) => {
    lastDim(cfg, inShape);
    return [...inShape.slice(0, -1), cfg.out];
  },
  params(cfg, inShape) {
    const n = lastDim(cfg, inShape);
    const bound = 1 / Math.sqrt(n);
    const w = { name: 'weight', shape: [cfg.out, n], init: { kind: 'uniform' as const, bound } };
    return cfg.bias === false ? [w] : [w, { name: 'bias', shape: [cfg.out], init: { kind: 'uniform' as const, bound } }];
  },
  macs: (cfg, inShape) => (sizeOf(inShape) / lastDim(cfg, inShape)) * lastDim(cfg, inShape) * cfg.out,
  forward(cfg, inShape, p, x, batch) {
    const n = lastDim(cfg, inShape);
    const rows = (batch * sizeOf(inShape)) / n;
    const o = cfg.out;
    const [w, b] = p;
    const y = new Float32Array(rows * o);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < o; j++) {
        let s = b ? b[j] : 0;
        for (let k = 0; k < n; k++) s += x[r * n + k] * w[j * n + k];
        y[r * o + j] = s;
      }
    }
    return { y, cache: x };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const x = cache as Float32Array;
    const n = lastDim(cfg, inShape);
    const rows = (batch * sizeOf(inShape)) / n;
    const o = cfg.out;
    const [w] = p;
    const dx = new Float32Array(rows * n);
    const dw = new Float32Array(o * n);
    const db = new Float32Array(o);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < o; j++) {
        const g = dy[r * o + j];
        db[j] += g;
        for (let k = 0; k < n; k++) {
          dw[j * n + k] += g * x[r * n + k];
          dx[r * n + k] += g * w[j * n + k];
        }
      }
    }
    return { dx, dp: cfg.bias === false ? [dw] : [dw, db] };
  },
});
