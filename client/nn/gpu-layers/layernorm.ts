// layernorm on the GPU (client/gpu/ops/layernorm.ts), as shared/layers/layernorm.ts.
// Keeps: the output and each row's mean and 1/std (stats [2, R]); backward recomputes x̂ from the
// input, which the layer before keeps. x, y [R, C] with C the last dimension, R = B·(the rest).
import type { LayerNormConfig } from '../../../shared/layers/layernorm.ts';
import { sizeOf } from '../../../shared/layers/layer.ts';
import { layerNorm, layerNormBackward, layerNormParamsBackward } from '../../gpu/ops/layernorm.ts';
import type { Dispatch } from '../../gpu/runtime.ts';
import { registerGpuLayer } from './layer.ts';

interface Stash {
  y: GPUBuffer;
  stats: GPUBuffer;
}

registerGpuLayer('layernorm', ({ gpu, config, inShape, params, grads, maxBatch, inputGrad, alloc }) => {
  const cols = inShape[inShape.length - 1];
  const size = sizeOf(inShape);
  const rowsOf = (batch: number) => (batch * size) / cols;
  const eps = (config as LayerNormConfig).eps;
  const [weight, bias] = params;
  const [dweight, dbias] = grads;
  const dx = inputGrad ? alloc(maxBatch * size, 'dx') : null;
  return {
    stash: (label) => ({ y: alloc(maxBatch * size, `${label}/y`), stats: alloc(2 * rowsOf(maxBatch), `${label}/stats`) }),
    forward(s: Stash, x, batch) {
      return { y: s.y, dispatches: [layerNorm(gpu, { x, weight, bias, y: s.y, stats: s.stats, rows: rowsOf(batch), cols, ...(eps === undefined ? {} : { eps }) })] };
    },
    backward(s: Stash, x, dy, batch) {
      const rows = rowsOf(batch);
      const dispatches: Dispatch[] = [layerNormParamsBackward(gpu, { x, stats: s.stats, dy, dweight, dbias, rows, cols, accumulate: true })];
      if (dx) dispatches.push(layerNormBackward(gpu, { x, weight, stats: s.stats, dy, dx, rows, cols }));
      return { dx, dispatches };
    },
  };
});
