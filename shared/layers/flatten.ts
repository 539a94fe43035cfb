// flatten: PyTorch nn.Flatten(): any shape → [size]; the values do not move.
import { onlyFields, registerLayer, sizeOf, type LayerConfig } from './layer.ts';

registerLayer<LayerConfig>({
  kind: 'flatten',
  check: (cfg) => onlyFields(cfg, []),
  outShape: (_cfg, inShape) => [sizeOf(inShape)],
  params: () => [],
  macs: () => 0,
  forward: (_cfg, _inShape, _p, x) => ({ y: x, cache: null }),
  backward: (_cfg, _inShape, _p, _cache, dy) => ({ dx: dy, dp: [] }),
});
