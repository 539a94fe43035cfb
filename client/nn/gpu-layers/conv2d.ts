// conv2d on the GPU: im2col + matmul (client/gpu/ops/conv2d.ts), as shared/layers/conv2d.ts.
// Keeps: the im2col matrix cols [B·Ho·Wo, C·K·K] (the weight gradient's operand) and the output;
// backward then reuses cols as its dcols scratch, so a stash is good for one backward.
// x [B, C, H, W], weight [O, C, K, K], bias [O], y [B, O, Ho, Wo].
import { convGeometry, type Conv2dConfig } from '../../../shared/layers/conv2d.ts';
import { conv2d, conv2dBackward, conv2dDims, type Conv2dShape } from '../../gpu/ops/conv2d.ts';
import { registerGpuLayer } from './layer.ts';

interface Stash {
  cols: GPUBuffer;
  y: GPUBuffer;
}

registerGpuLayer('conv2d', ({ gpu, config, inShape, params, grads, maxBatch, inputGrad, alloc }) => {
  const g = convGeometry(config as Conv2dConfig, inShape);
  const shape = (batch: number): Conv2dShape => ({ batch, channels: g.c, height: g.h, width: g.w, out: g.o, kernel: g.k, stride: g.s, padding: g.pad });
  const { positions, taps } = conv2dDims(shape(maxBatch));
  const [weight, bias] = params;
  const [dweight, dbias] = grads;
  // The product before its layout change (forward) and dy by output position (backward).
  const rows = alloc(positions * g.o, 'rows');
  const dx = inputGrad ? alloc(maxBatch * g.c * g.h * g.w, 'dx') : null;
  return {
    stash: (label) => ({ cols: alloc(positions * taps, `${label}/cols`), y: alloc(maxBatch * g.o * g.ho * g.wo, `${label}/y`) }),
    forward(s: Stash, x, batch) {
      return { y: s.y, dispatches: conv2d(gpu, { ...shape(batch), x, weight, bias, cols: s.cols, rows, y: s.y }) };
    },
    backward(s: Stash, _x, dy, batch) {
      const dispatches = conv2dBackward(gpu, { ...shape(batch), dy, cols: s.cols, weight, dyRows: rows, dweight, dbias, accumulate: true, ...(dx ? { dx, dcols: s.cols } : {}) });
      return { dx, dispatches };
    },
  };
});
