// residual on the GPU: y = x + f(x), its inner layers f run as a chain of their own GPU layers
// (./chain.ts), as shared/layers/residual.ts. Keeps: the inner layers' stashes and the sum y.
// Backward: dx = dy + (f's backward of dy), into the residual's own dx.
import type { ResidualConfig } from '../../../shared/layers/residual.ts';
import { sizeOf } from '../../../shared/layers/layer.ts';
import { describeModel } from '../../../shared/layers/sequence.ts';
import { add } from '../../gpu/ops/add.ts';
import { createChain, type ChainStash } from './chain.ts';
import { registerGpuLayer } from './layer.ts';

interface Stash {
  inner: ChainStash;
  y: GPUBuffer;
}

registerGpuLayer('residual', (setup) => {
  const { gpu, inShape, maxBatch, inputGrad, alloc } = setup;
  const size = sizeOf(inShape);
  const f = createChain({ ...setup, layers: describeModel((setup.config as ResidualConfig).layers, inShape, 'fn.').layers, alloc: (n, label) => alloc(n, `fn.${label}`) });
  const dx = inputGrad ? alloc(maxBatch * size, 'dx') : null;
  return {
    stash: (label) => ({ inner: f.stash(`${label}/fn`), y: alloc(maxBatch * size, `${label}/y`) }),
    forward(s: Stash, x, batch) {
      const inner = f.forward(s.inner, x, batch);
      return { y: s.y, dispatches: [...inner.dispatches, add(gpu, { a: x, b: inner.y, out: s.y, n: batch * size })] };
    },
    backward(s: Stash, x, dy, batch) {
      const inner = f.backward(s.inner, x, dy, batch);
      if (!dx || !inner.dx) return { dx: null, dispatches: inner.dispatches };
      return { dx, dispatches: [...inner.dispatches, add(gpu, { a: dy, b: inner.dx, out: dx, n: batch * size })] };
    },
  };
});
