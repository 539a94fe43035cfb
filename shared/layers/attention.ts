// attention: causal multi-head self-attention with its output projection, as PyTorch's
// nn.MultiheadAttention(C, heads, batch_first=True) called with a causal mask (docs/pytorch.md).
// [T, C] → [T, C]. in_proj_weight [3C, C] (xavier uniform), in_proj_bias [3C] = 0,
// out_proj.weight [C, C] ~ U(±1/√C), out_proj.bias [C] = 0. Position i attends to 0..i.
import { expectRank, intField, LayerError, onlyFields, registerLayer, type LayerConfig, type Shape } from './layer.ts';

export interface AttentionConfig extends LayerConfig {
  kind: 'attention';
  heads: number;
}

export function attentionDims(cfg: AttentionConfig, inShape: Shape) {
  expectRank(cfg, inShape, 2, 'a sequence [positions, channels]');
  const [t, c] = inShape;
  if (c % cfg.heads !== 0) throw new LayerError(`attention: ${c} channels do not split into ${cfg.heads} heads`);
  return { t, c, h: cfg.heads, d: c / cfg.heads };
}

/** y[r, :] = x[r, :] · wᵀ + b for rows r; x [rows, n], w [m, n], b [m]. */
function linear(x: Float32Array, rows: number, n: number, w: Float32Array, b: Float32Array, m: number): Float32Array {
  const y = new Float32Array(rows * m);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < m; j++) {
      let s = b[j];
      for (let k = 0; k < n; k++) s += x[r * n + k] * w[j * n + k];
      y[r * m + j] = s;
    }
  return y;
}

/** Backward of linear: accumulates dw, db; returns dx. */
function linearBack(x: Float32Array, dy: Float32Array, rows: number, n: number, w: Float32Array, m: number, dw: Float32Array, db: Float32Array): Float32Array {
  const dx = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < m; j++) {
      const g = dy[r * m + j];
      db[j] += g;
      for (let k = 0; k < n; k++) {
        dw[j * n + k] += g * x[r * n + k];
        dx[r * n + k] += g * w[j * n + k];
      }
    }
  return dx;
}

/** The attention between the projections: qkv [B·T, 3C] → probabilities [B, H, T, T] and heads' output o [B·T, C]. */
export function attentionCore(qkv: Float32Array, batch: number, t: number, c: number, h: number): { probs: Float32Array; o: Float32Array } {
  const d = c / h;
  const probs = new Float32Array(batch * h * t * t);
  const o = new Float32Array(batch * t * c);
  const scale = 1 / Math.sqrt(d);
  const row = new Float64Array(t);
  for (let b = 0; b < batch; b++)
    for (let hh = 0; hh < h; hh++)
      for (let i = 0; i < t; i++) {
        const qi = (b * t + i) * 3 * c + hh * d;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const kj = (b * t + j) * 3 * c + c + hh * d;
          let s = 0;
          for (let k = 0; k < d; k++) s += qkv[qi + k] * qkv[kj + k];
          row[j] = s * scale;
          max = Math.max(max, row[j]);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += row[j] = Math.exp(row[j] - max);
        const pBase = ((b * h + hh) * t + i) * t;
        for (let j = 0; j <= i; j++) {
          const pij = row[j] / sum;
          probs[pBase + j] = pij;
          const vj = (b * t + j) * 3 * c + 2 * c + hh * d;
          for (let k = 0; k < d; k++) o[(b * t + i) * c + hh * d + k] += pij * qkv[vj + k];
        }
      }
  return { probs, o };
}

/** Backward of attentionCore: dO [B·T, C] → dqkv [B·T, 3C]. */
export function attentionCoreBackward(qkv: Float32Array, probs: Float32Array, dO: Float32Array, batch: number, t: number, c: number, h: number): Float32Array {
  const d = c / h;
  const dqkv = new Float32Array(batch * t * 3 * c);
  const scale = 1 / Math.sqrt(d);
  const dP = new Float64Array(t);
  for (let b = 0; b < batch; b++)
    for (let hh = 0; hh < h; hh++)
      for (let i = 0; i < t; i++) {
        const pBase = ((b * h + hh) * t + i) * t;
        const doi = (b * t + i) * c + hh * d;
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          const vj = (b * t + j) * 3 * c + 2 * c + hh * d;
          let s = 0;
          for (let k = 0; k < d; k++) {
            s += dO[doi + k] * qkv[vj + k];
            dqkv[vj + k] += probs[pBase + j] * dO[doi + k];
          }
          dP[j] = s;
          dot += s * probs[pBase + j];
        }
        const qi = (b * t + i) * 3 * c + hh * d;
        for (let j = 0; j <= i; j++) {
          const ds = probs[pBase + j] * (dP[j] - dot) * scale;
          const kj = (b * t + j) * 3 * c + c + hh * d;
          for (let k = 0; k < d; k++) {
            dqkv[qi + k] += ds * qkv[kj + k];
            dqkv[kj + k] += ds * qkv[qi + k];
          }
        }
      }
  return dqkv;
}

export interface AttentionCache {
  x: Float32Array;
  qkv: Float32Array;
  probs: Float32Array;
  o: Float32Array;
}

registerLayer<AttentionConfig>({
  kind: 'attention',
  check(cfg) {
    onlyFields(cfg, ['heads']);
    intField(cfg, 'heads', { max: 256 });
  },
  outShape(cfg, inShape) {
    attentionDims(cfg, inShape);
    return [...inShape];
  },
  params(cfg, inShape) {
    const { c } = attentionDims(cfg, inShape);
    return [
      { name: 'in_proj_weight', shape: [3 * c, c], init: { kind: 'uniform', bound: Math.sqrt(6 / (4 * c)) } },
      { name: 'in_proj_bias', shape: [3 * c], init: { kind: 'constant', value: 0 } },
      { name: 'out_proj.weight', shape: [c, c], init: { kind: 'uniform', bound: 1 / Math.sqrt(c) } },
      { name: 'out_proj.bias', shape: [c], init: { kind: 'constant', value: 0 } },
    ];
  },
  macs(cfg, inShape) {
    const { t, c } = attentionDims(cfg, inShape);
    return 4 * t * c * c + t * t * c; // projections, plus QKᵀ and PV over the causal half
  },
  forward(cfg, inShape, p, x, batch) {
    const { t, c, h } = attentionDims(cfg, inShape);
    const [wIn, bIn, wOut, bOut] = p;
    const rows = batch * t;
    const qkv = linear(x, rows, c, wIn, bIn, 3 * c);
    const { probs, o } = attentionCore(qkv, batch, t, c, h);
    const y = linear(o, rows, c, wOut, bOut, c);
    return { y, cache: { x, qkv, probs, o } };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const { t, c, h } = attentionDims(cfg, inShape);
    const { x, qkv, probs, o } = cache as AttentionCache;
    const [wIn, , wOut] = p;
    const rows = batch * t;
    const dwOut = new Float32Array(c * c);
    const dbOut = new Float32Array(c);
    const dO = linearBack(o, dy, rows, c, wOut, c, dwOut, dbOut);
    const dqkv = attentionCoreBackward(qkv, probs, dO, batch, t, c, h);
    const dwIn = new Float32Array(3 * c * c);
    const dbIn = new Float32Array(3 * c);
    const dx = linearBack(x, dqkv, rows, c, wIn, 3 * c, dwIn, dbIn);
    return { dx, dp: [dwIn, dbIn, dwOut, dbOut] };
  },
});
