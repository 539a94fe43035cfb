// embedding on the GPU (client/gpu/ops/embedding.ts), as shared/layers/embedding.ts.
// Keeps: its output only (backward reads the token ids, which the executor keeps as the input).
// ids [B·T] (float32), weight [V, D], y [B·T, D]. Token ids have no gradient: a dx, where one is
// asked for, stays zero.
import type { EmbeddingConfig } from '../../../shared/layers/embedding.ts';
import { LayerError } from '../../../shared/layers/layer.ts';
import { embedding, embeddingBackward } from '../../gpu/ops/embedding.ts';
import { registerGpuLayer } from './layer.ts';

registerGpuLayer('embedding', ({ gpu, config, inShape, params, grads, maxBatch, inputGrad, alloc }) => {
  const { vocab, dim } = config as EmbeddingConfig;
  const t = inShape[0];
  const dx = inputGrad ? alloc(maxBatch * t, 'dx') : null;
  return {
    stash: (label) => ({ y: alloc(maxBatch * t * dim, `${label}/y`) }),
    forward(s: { y: GPUBuffer }, x, batch) {
      return { y: s.y, dispatches: [embedding(gpu, { ids: x, weight: params[0], y: s.y, positions: batch * t, dim, vocab })] };
    },
    backward(_s, x, dy, batch) {
      return { dx, dispatches: [embeddingBackward(gpu, { ids: x, dy, dweight: grads[0], positions: batch * t, dim, vocab, accumulate: true })] };
    },
    // The kernel writes zeros for an id outside [0, V); the reference throws, and so does this.
    checkInput(x, batch) {
      for (let i = 0; i < batch * t; i++) {
        const id = x[i];
        if (!(Number.isInteger(id) && id >= 0 && id < vocab)) throw new LayerError(`embedding: token id ${id} at position ${i} is outside [0, ${vocab})`);
      }
    },
  };
});
