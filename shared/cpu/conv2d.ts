// conv2d on the CPU: im2col (each output position's receptive field as a row) and one product
// with the weight [out, C·k·k], then col2im for the input gradient.
import { convGeometry, type Conv2dConfig, type ConvGeometry } from '../layers/conv2d.ts';
import { gemmNT, gemmTN, transpose } from './gemm.ts';
import { registerCpuKernels } from './kernels.ts';

/** cols: f32[B·Ho·Wo, C·k·k], zero where the window falls in the padding. */
function im2col(x: Float32Array, g: ConvGeometry, batch: number): Float32Array {
  const K = g.c * g.k * g.k;
  const cols = new Float32Array(batch * g.ho * g.wo * K);
  const inSize = g.c * g.h * g.w;
  let row = 0;
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < g.ho; i++)
      for (let j = 0; j < g.wo; j++, row++) {
        let col = row * K;
        for (let c = 0; c < g.c; c++)
          for (let kh = 0; kh < g.k; kh++) {
            const r = i * g.s + kh - g.pad;
            for (let kw = 0; kw < g.k; kw++, col++) {
              const q = j * g.s + kw - g.pad;
              if (r >= 0 && r < g.h && q >= 0 && q < g.w) cols[col] = x[n * inSize + (c * g.h + r) * g.w + q];
            }
          }
      }
  return cols;
}

function col2im(dcols: Float32Array, g: ConvGeometry, batch: number): Float32Array {
  const K = g.c * g.k * g.k;
  const inSize = g.c * g.h * g.w;
  const dx = new Float32Array(batch * inSize);
  let row = 0;
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < g.ho; i++)
      for (let j = 0; j < g.wo; j++, row++) {
        let col = row * K;
        for (let c = 0; c < g.c; c++)
          for (let kh = 0; kh < g.k; kh++) {
            const r = i * g.s + kh - g.pad;
            for (let kw = 0; kw < g.k; kw++, col++) {
              const q = j * g.s + kw - g.pad;
              if (r >= 0 && r < g.h && q >= 0 && q < g.w) dx[n * inSize + (c * g.h + r) * g.w + q] += dcols[col];
            }
          }
      }
  return dx;
}

registerCpuKernels('conv2d', {
  forward(cfg, inShape, p, x, batch) {
    const g = convGeometry(cfg as Conv2dConfig, inShape);
    const K = g.c * g.k * g.k;
    const rows = batch * g.ho * g.wo;
    const cols = im2col(x, g, batch);
    const tmp = new Float32Array(rows * g.o);
    gemmNT(cols, p[0], tmp, rows, g.o, K);
    // [B, Ho·Wo, O] → [B, O, Ho·Wo], plus the bias.
    const hw = g.ho * g.wo;
    const y = new Float32Array(batch * g.o * hw);
    const b = p[1];
    for (let n = 0; n < batch; n++) for (let q = 0; q < hw; q++) for (let o = 0; o < g.o; o++) y[(n * g.o + o) * hw + q] = tmp[(n * hw + q) * g.o + o] + b[o];
    return { y, cache: cols };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const cols = cache as Float32Array;
    const g = convGeometry(cfg as Conv2dConfig, inShape);
    const K = g.c * g.k * g.k;
    const hw = g.ho * g.wo;
    const rows = batch * hw;
    const dtmp = new Float32Array(rows * g.o);
    const db = new Float32Array(g.o);
    for (let n = 0; n < batch; n++)
      for (let o = 0; o < g.o; o++)
        for (let q = 0; q < hw; q++) {
          const d = dy[(n * g.o + o) * hw + q];
          dtmp[(n * hw + q) * g.o + o] = d;
          db[o] += d;
        }
    const dw = new Float32Array(g.o * K);
    gemmTN(dtmp, cols, dw, g.o, K, rows);
    const wt = new Float32Array(K * g.o);
    transpose(p[0], wt, g.o, K);
    const dcols = new Float32Array(rows * K);
    gemmNT(dtmp, wt, dcols, rows, K, g.o);
    return { dx: col2im(dcols, g, batch), dp: [dw, db] };
  },
});
