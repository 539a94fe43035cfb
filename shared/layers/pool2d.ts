// The window geometry maxpool2d and avgpool2d share: PyTorch's nn.MaxPool2d / nn.AvgPool2d with
// kernel `size`, stride `stride` (default: size), no padding. [C, H, W] → [C, Ho, Wo].
import { expectRank, intField, LayerError, onlyFields, registerLayer, shapeText, type LayerConfig, type LayerKind, type Shape } from './layer.ts';

export interface PoolConfig extends LayerConfig {
  size: number;
  stride?: number;
}

export function checkPool(cfg: PoolConfig): void {
  onlyFields(cfg, ['size', 'stride']);
  intField(cfg, 'size', { max: 64 });
  intField(cfg, 'stride', { def: cfg.size, max: 64 });
}

export function poolGeometry(cfg: PoolConfig, inShape: Shape) {
  expectRank(cfg, inShape, 3, 'an image [channels, height, width]');
  const [c, h, w] = inShape;
  const k = cfg.size;
  const s = cfg.stride ?? k;
  const ho = Math.floor((h - k) / s) + 1;
  const wo = Math.floor((w - k) / s) + 1;
  if (ho < 1 || wo < 1) throw new LayerError(`${cfg.kind} of size ${k} does not fit an input of shape ${shapeText(inShape)}`);
  return { c, h, w, k, s, ho, wo };
}

/** Registers a pooling kind: the shared shape, cost and field checks around its own forward and backward. */
export function registerPool(kind: string, impl: Pick<LayerKind<PoolConfig>, 'forward' | 'backward'>): void {
  registerLayer<PoolConfig>({
    kind,
    check: checkPool,
    outShape(cfg, inShape) {
      const g = poolGeometry(cfg, inShape);
      return [g.c, g.ho, g.wo];
    },
    params: () => [],
    macs(cfg, inShape) {
      const g = poolGeometry(cfg, inShape);
      return g.c * g.ho * g.wo * g.k * g.k;
    },
    ...impl,
  });
}
