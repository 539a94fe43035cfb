// residual: x + f(x) for a list of layers f that keeps the shape, as a module
// `Residual(fn=nn.Sequential(...))` whose parameters are named 'fn.<j>.<name>' (docs/pytorch.md).
import { LayerError, onlyFields, registerLayer, shapeText, sizeOf, type LayerConfig } from './layer.ts';
import { backwardRange, describeModel, forwardRange, type ModelDescription } from './sequence.ts';

export interface ResidualConfig extends LayerConfig {
  kind: 'residual';
  layers: LayerConfig[];
}

const inner = (cfg: ResidualConfig, inShape: readonly number[]): ModelDescription => {
  const d = describeModel(cfg.layers, inShape, 'fn.');
  if (d.outShape.join(',') !== inShape.join(',')) throw new LayerError(`residual: its layers turn ${shapeText(inShape)} into ${shapeText(d.outShape)}; x + f(x) needs the same shape`);
  return d;
};

/** The residual's parameter tensors side by side, as its inner layers' flat vector (offsets from 0). */
export const flatOf = (p: Float32Array[]): Float32Array => {
  const n = p.reduce((a, t) => a + t.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const t of p) {
    out.set(t, o);
    o += t.length;
  }
  return out;
};

registerLayer<ResidualConfig>({
  kind: 'residual',
  check(cfg) {
    onlyFields(cfg, ['layers']);
    if (!Array.isArray(cfg.layers) || cfg.layers.length === 0) throw new LayerError('residual: layers must be a non-empty list of layers');
  },
  outShape: (cfg, inShape) => (inner(cfg, inShape), [...inShape]),
  params: (cfg, inShape) => inner(cfg, inShape).layers.flatMap((l) => l.params.map(({ name, shape, init }) => ({ name, shape, init }))),
  macs: (cfg, inShape) => inner(cfg, inShape).macs + sizeOf(inShape),
  forward(cfg, inShape, p, x, batch) {
    const d = inner(cfg, inShape);
    const flat = flatOf(p);
    const f = forwardRange(d, flat, x, batch);
    const y = new Float32Array(f.y.length);
    for (let i = 0; i < y.length; i++) y[i] = x[i] + f.y[i];
    return { y, cache: { caches: f.caches, flat } };
  },
  backward(cfg, inShape, _p, cache, dy, batch) {
    const d = inner(cfg, inShape);
    const { caches, flat } = cache as { caches: unknown[]; flat: Float32Array };
    const grads = new Float32Array(flat.length);
    const dxInner = backwardRange(d, flat, caches, dy, batch, grads);
    const dx = new Float32Array(dy.length);
    for (let i = 0; i < dx.length; i++) dx[i] = dy[i] + dxInner[i];
    return { dx, dp: d.layers.flatMap((l) => l.params.map((q) => grads.subarray(q.offset, q.offset + q.size))) };
  },
});
