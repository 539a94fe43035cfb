// relu and gelu (PyTorch's nn.GELU(approximate='tanh')): elementwise, any shape, no parameters.
// The maths is the kernels' own reference (reference/bias-act.ts).
import { activate, activateGrad } from '../reference/bias-act.ts';
import { onlyFields, registerLayer, sizeOf, type LayerConfig, type LayerKind } from './layer.ts';

function elementwise(kind: 'relu' | 'gelu'): LayerKind<LayerConfig> {
  return {
    kind,
    check: (cfg) => onlyFields(cfg, []),
    outShape: (_cfg, inShape) => [...inShape],
    params: () => [],
    macs: (_cfg, inShape) => sizeOf(inShape),
    forward(_cfg, inShape, _p, x, batch) {
      const n = batch * sizeOf(inShape);
      const y = new Float32Array(n);
      for (let i = 0; i < n; i++) y[i] = activate(x[i], kind);
      return { y, cache: x };
    },
    backward(_cfg, inShape, _p, cache, dy, batch) {
      const x = cache as Float32Array;
      const n = batch * sizeOf(inShape);
      const dx = new Float32Array(n);
      for (let i = 0; i < n; i++) dx[i] = dy[i] * activateGrad(x[i], kind);
      return { dx, dp: [] };
    },
  };
}

registerLayer(elementwise('relu'));
registerLayer(elementwise('gelu'));
