// conv2d: PyTorch nn.Conv2d(C, out, kernel, stride, padding) with zero padding.
// [C, H, W] → [out, Ho, Wo], Ho = ⌊(H + 2·padding − kernel) / stride⌋ + 1; weight [out, C, k, k],
// bias [out]; both ~ U(±1/√(C·k·k)) (PyTorch's default).
import { expectRank, intField, LayerError, onlyFields, registerLayer, shapeText, type LayerConfig, type Shape } from './layer.ts';

export interface Conv2dConfig extends LayerConfig {
  kind: 'conv2d';
  out: number;
  kernel: number;
  stride?: number;
  padding?: number;
}

export interface ConvGeometry {
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  s: number;
  pad: number;
  ho: number;
  wo: number;
}

export function convGeometry(cfg: Conv2dConfig, inShape: Shape): ConvGeometry {
  expectRank(cfg, inShape, 3, 'an image [channels, height, width]');
  const [c, h, w] = inShape;
  const k = cfg.kernel;
  const s = cfg.stride ?? 1;
  const pad = cfg.padding ?? 0;
  const ho = Math.floor((h + 2 * pad - k) / s) + 1;
  const wo = Math.floor((w + 2 * pad - k) / s) + 1;
  if (ho < 1 || wo < 1) throw new LayerError(`conv2d with kernel ${k}, stride ${s}, padding ${pad} does not fit an input of shape ${shapeText(inShape)}`);
  return { c, h, w, o: cfg.out, k, s, pad, ho, wo };
}

registerLayer<Conv2dConfig>({
  kind: 'conv2d',
  check(cfg) {
    onlyFields(cfg, ['out', 'kernel', 'stride', 'padding']);
    intField(cfg, 'out', { max: 4096 });
    intField(cfg, 'kernel', { max: 64 });
    intField(cfg, 'stride', { def: 1, max: 64 });
    intField(cfg, 'padding', { def: 0, min: 0, max: 64 });
  },
  outShape(cfg, inShape) {
    const g = convGeometry(cfg, inShape);
    return [g.o, g.ho, g.wo];
  },
  params(cfg, inShape) {
    const g = convGeometry(cfg, inShape);
    const bound = 1 / Math.sqrt(g.c * g.k * g.k);
    return [
      { name: 'weight', shape: [g.o, g.c, g.k, g.k], init: { kind: 'uniform', bound } },
      { name: 'bias', shape: [g.o], init: { kind: 'uniform', bound } },
    ];
  },
  macs(cfg, inShape) {
    const g = convGeometry(cfg, inShape);
    return g.o * g.ho * g.wo * g.c * g.k * g.k;
  },
  forward(cfg, inShape, p, x, batch) {
    const g = convGeometry(cfg, inShape);
    const [wt, b] = p;
    const inSize = g.c * g.h * g.w;
    const outSize = g.o * g.ho * g.wo;
    const y = new Float32Array(batch * outSize);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < g.o; o++) {
        for (let i = 0; i < g.ho; i++) {
          for (let j = 0; j < g.wo; j++) {
            let s = b[o];
            for (let c = 0; c < g.c; c++) {
              for (let kh = 0; kh < g.k; kh++) {
                const r = i * g.s + kh - g.pad;
                if (r < 0 || r >= g.h) continue;
                for (let kw = 0; kw < g.k; kw++) {
                  const q = j * g.s + kw - g.pad;
                  if (q < 0 || q >= g.w) continue;
                  s += wt[((o * g.c + c) * g.k + kh) * g.k + kw] * x[n * inSize + (c * g.h + r) * g.w + q];
                }
              }
            }
            y[n * outSize + (o * g.ho + i) * g.wo + j] = s;
          }
        }
      }
    }
    return { y, cache: x };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const x = cache as Float32Array;
    const g = convGeometry(cfg, inShape);
    const [wt] = p;
    const inSize = g.c * g.h * g.w;
    const outSize = g.o * g.ho * g.wo;
    const dx = new Float32Array(batch * inSize);
    const dw = new Float32Array(wt.length);
    const db = new Float32Array(g.o);
    for (let n = 0; n < batch; n++) {
      for (let o = 0; o < g.o; o++) {
        for (let i = 0; i < g.ho; i++) {
          for (let j = 0; j < g.wo; j++) {
            const d = dy[n * outSize + (o * g.ho + i) * g.wo + j];
            db[o] += d;
            for (let c = 0; c < g.c; c++) {
              for (let kh = 0; kh < g.k; kh++) {
                const r = i * g.s + kh - g.pad;
                if (r < 0 || r >= g.h) continue;
                for (let kw = 0; kw < g.k; kw++) {
                  const q = j * g.s + kw - g.pad;
                  if (q < 0 || q >= g.w) continue;
                  const wi = ((o * g.c + c) * g.k + kh) * g.k + kw;
                  const xi = n * inSize + (c * g.h + r) * g.w + q;
                  dw[wi] += d * x[xi];
                  dx[xi] += d * wt[wi];
                }
              }
            }
          }
        }
      }
    }
    return { dx, dp: [dw, db] };
  },
});
