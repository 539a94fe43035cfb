// maxpool2d on the GPU (client/gpu/ops/pool.ts), as shared/layers/maxpool2d.ts.
// Keeps: the output and each window's argmax (u32 [B, C, Ho, Wo], flat indices into x).
import { poolGeometry, type PoolConfig } from '../../../shared/layers/pool2d.ts';
import { maxPool, maxPoolBackward } from '../../gpu/ops/pool.ts';
import { registerGpuLayer } from './layer.ts';

interface Stash {
  y: GPUBuffer;
  argmax: GPUBuffer;
}

registerGpuLayer('maxpool2d', ({ gpu, config, inShape, maxBatch, inputGrad, alloc }) => {
  const g = poolGeometry(config as PoolConfig, inShape);
  const shape = (batch: number) => ({ batch, channels: g.c, height: g.h, width: g.w, size: g.k, stride: g.s });
  const outSize = maxBatch * g.c * g.ho * g.wo;
  const dx = inputGrad ? alloc(maxBatch * g.c * g.h * g.w, 'dx') : null;
  return {
    stash: (label) => ({ y: alloc(outSize, `${label}/y`), argmax: alloc(outSize, `${label}/argmax`) }),
    forward(s: Stash, x, batch) {
      return { y: s.y, dispatches: [maxPool(gpu, { ...shape(batch), x, y: s.y, argmax: s.argmax })] };
    },
    backward(s: Stash, _x, dy, batch) {
      if (!dx) return { dx: null, dispatches: [] };
      return { dx, dispatches: [maxPoolBackward(gpu, { ...shape(batch), dy, argmax: s.argmax, dx })] };
    },
  };
});
