// positional on the GPU: learned positions P [T, C] added to every example, as
// shared/layers/positional.ts. Keeps: its output only. Its dx is its dy; dP += Σ_B dy.
import { sizeOf } from '../../../shared/layers/layer.ts';
import { add } from '../../gpu/ops/add.ts';
import { colSum } from '../../gpu/ops/reduce.ts';
import { registerGpuLayer } from './layer.ts';

registerGpuLayer('positional', ({ gpu, inShape, params, grads, maxBatch, inputGrad, alloc }) => {
  const size = sizeOf(inShape);
  return {
    stash: (label) => ({ y: alloc(maxBatch * size, `${label}/y`) }),
    forward(s: { y: GPUBuffer }, x, batch) {
      return { y: s.y, dispatches: [add(gpu, { a: x, b: params[0], out: s.y, n: batch * size, nb: size })] };
    },
    backward(_s, _x, dy, batch) {
      return { dx: inputGrad ? dy : null, dispatches: [colSum(gpu, { x: dy, out: grads[0], rows: batch, cols: size, accumulate: true })] };
    },
  };
});
