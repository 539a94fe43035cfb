// attention on the GPU (client/gpu/ops/attention.ts: projections as matmuls around the causal
// core), as shared/layers/attention.ts. Keeps: qkv [B·T, 3C], the probabilities [B, H, T, T],
// the heads' output o [B·T, C] and the output y [B·T, C]; backward reads the input too, which
// the layer before keeps. Backward scratch dO, dscores, dqkv is the layer's own.
import { attentionDims, type AttentionConfig } from '../../../shared/layers/attention.ts';
import { attention, attentionBackward } from '../../gpu/ops/attention.ts';
import { registerGpuLayer } from './layer.ts';

interface Stash {
  qkv: GPUBuffer;
  probs: GPUBuffer;
  o: GPUBuffer;
  y: GPUBuffer;
}

registerGpuLayer('attention', ({ gpu, config, inShape, params, grads, maxBatch, alloc }) => {
  const { t, c, h } = attentionDims(config as AttentionConfig, inShape);
  const rows = maxBatch * t;
  const [inWeight, inBias, outWeight, outBias] = params;
  const [dInWeight, dInBias, dOutWeight, dOutBias] = grads;
  // The wrapper always gives dx (one matmul); attention is never a model's first layer.
  const scratch = { dO: alloc(rows * c, 'dO'), dscores: alloc(maxBatch * h * t * t, 'dscores'), dqkv: alloc(rows * 3 * c, 'dqkv'), dx: alloc(rows * c, 'dx') };
  return {
    stash: (label) => ({ qkv: alloc(rows * 3 * c, `${label}/qkv`), probs: alloc(maxBatch * h * t * t, `${label}/probs`), o: alloc(rows * c, `${label}/o`), y: alloc(rows * c, `${label}/y`) }),
    forward(s: Stash, x, batch) {
      return { y: s.y, dispatches: attention(gpu, { batch, t, c, heads: h, x, inWeight, inBias, outWeight, outBias, ...s }) };
    },
    backward(s: Stash, x, dy, batch) {
      const dispatches = attentionBackward(gpu, {
        batch, t, c, heads: h, x, qkv: s.qkv, probs: s.probs, o: s.o, inWeight, outWeight, dy,
        ...scratch, dInWeight, dInBias, dOutWeight, dOutBias, accumulate: true,
      });
      return { dx: scratch.dx, dispatches };
    },
  };
});
