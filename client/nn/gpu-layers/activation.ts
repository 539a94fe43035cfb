// relu and gelu on the GPU: the bias-act kernels with a zero bias, as shared/layers/activation.ts.
// Keeps: its output only (its backward reads the input, which the layer before keeps).
// x, y, dy, dx [R, C] with C the last dimension of one example and R = B·(the rest).
import { sizeOf } from '../../../shared/layers/layer.ts';
import { biasAct, biasActBackward } from '../../gpu/ops/bias-act.ts';
import { registerGpuLayer, type GpuLayerFactory } from './layer.ts';

const elementwise =
  (act: 'relu' | 'gelu'): GpuLayerFactory =>
  ({ gpu, inShape, maxBatch, inputGrad, alloc }) => {
    const cols = inShape[inShape.length - 1];
    const size = sizeOf(inShape);
    const zero = alloc(cols, 'zero-bias');
    const dx = inputGrad ? alloc(maxBatch * size, 'dx') : null;
    return {
      stash: (label) => ({ y: alloc(maxBatch * size, `${label}/y`) }),
      forward(s: { y: GPUBuffer }, x, batch) {
        return { y: s.y, dispatches: [biasAct(gpu, { x, bias: zero, y: s.y, rows: (batch * size) / cols, cols, act })] };
      },
      backward(_s, x, dy, batch) {
        if (!dx) return { dx: null, dispatches: [] };
        return { dx, dispatches: [biasActBackward(gpu, { x, bias: zero, dy, dx, rows: (batch * size) / cols, cols, act })] };
      },
    };
  };

registerGpuLayer('relu', elementwise('relu'));
registerGpuLayer('gelu', elementwise('gelu'));
