// dense on the GPU: y = x·Wᵀ (+ b) over the last dimension, as shared/layers/dense.ts.
// Keeps: its output only (its backward reads the input, which the layer before keeps).
// x [R, n] with R = B·(positions), W [o, n], b [o], y [R, o].
//   forward:  y = x·Wᵀ; y += b
//   backward: dW += dyᵀ·x; db += Σ_R dy; dx = dy·W
import type { DenseConfig } from '../../../shared/layers/dense.ts';
import { sizeOf } from '../../../shared/layers/layer.ts';
import { addInPlace } from '../../gpu/ops/add.ts';
import { matmul } from '../../gpu/ops/matmul.ts';
import { colSum } from '../../gpu/ops/reduce.ts';
import type { Dispatch } from '../../gpu/runtime.ts';
import { registerGpuLayer } from './layer.ts';

registerGpuLayer('dense', ({ gpu, config, inShape, params, grads, maxBatch, inputGrad, alloc }) => {
  const n = inShape[inShape.length - 1];
  const o = (config as DenseConfig).out;
  const perExample = sizeOf(inShape) / n;
  const [w, b] = params;
  const [dw, db] = grads;
  const dx = inputGrad ? alloc(maxBatch * perExample * n, 'dx') : null;
  return {
    stash: (label) => ({ y: alloc(maxBatch * perExample * o, `${label}/y`) }),
    forward(s: { y: GPUBuffer }, x, batch) {
      const rows = batch * perExample;
      const dispatches: Dispatch[] = [matmul(gpu, { a: x, b: w, c: s.y, m: rows, n: o, k: n, transB: true })];
      if (b) dispatches.push(addInPlace(gpu, { out: s.y, b, n: rows * o, nb: o }));
      return { y: s.y, dispatches };
    },
    backward(_s, x, dy, batch) {
      const rows = batch * perExample;
      const dispatches: Dispatch[] = [matmul(gpu, { a: dy, b: x, c: dw, m: o, n, k: rows, transA: true, accumulate: true })];
      if (db) dispatches.push(colSum(gpu, { x: dy, out: db, rows, cols: o, accumulate: true }));
      if (dx) dispatches.push(matmul(gpu, { a: dy, b: w, c: dx, m: rows, n, k: o }));
      return { dx, dispatches };
    },
  };
});
