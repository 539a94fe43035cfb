// avgpool2d on the GPU (client/gpu/ops/pool.ts), as shared/layers/avgpool2d.ts.
// Keeps: its output only (the backward needs nothing of the forward).
import { poolGeometry, type PoolConfig } from '../../../shared/layers/pool2d.ts';
import { avgPool, avgPoolBackward } from '../../gpu/ops/pool.ts';
import { registerGpuLayer } from './layer.ts';

registerGpuLayer('avgpool2d', ({ gpu, config, inShape, maxBatch, inputGrad, alloc }) => {
  const g = poolGeometry(config as PoolConfig, inShape);
  const shape = (batch: number) => ({ batch, channels: g.c, height: g.h, width: g.w, size: g.k, stride: g.s });
  const dx = inputGrad ? alloc(maxBatch * g.c * g.h * g.w, 'dx') : null;
  return {
    stash: (label) => ({ y: alloc(maxBatch * g.c * g.ho * g.wo, `${label}/y`) }),
    forward(s: { y: GPUBuffer }, x, batch) {
      return { y: s.y, dispatches: [avgPool(gpu, { ...shape(batch), x, y: s.y })] };
    },
    backward(_s, _x, dy, batch) {
      if (!dx) return { dx: null, dispatches: [] };
      return { dx, dispatches: [avgPoolBackward(gpu, { ...shape(batch), dy, dx })] };
    },
  };
});
