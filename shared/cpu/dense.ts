// dense on the CPU: y = x·Wᵀ + b and its backward as register-blocked products.
import type { DenseConfig } from '../layers/dense.ts';
import { sizeOf } from '../layers/layer.ts';
import { registerCpuKernels } from './kernels.ts';
import { linearBackward, linearForward } from './linear.ts';

registerCpuKernels('dense', {
  forward(cfg, inShape, p, x, batch) {
    const n = inShape[inShape.length - 1];
    const rows = (batch * sizeOf(inShape)) / n;
    return { y: linearForward(x, rows, n, p[0], p[1], (cfg as DenseConfig).out), cache: x };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const { out, bias } = cfg as DenseConfig;
    const n = inShape[inShape.length - 1];
    const rows = (batch * sizeOf(inShape)) / n;
    const { dx, dw, db } = linearBackward(cache as Float32Array, dy, rows, n, p[0], out, bias !== false);
    return { dx, dp: db ? [dw, db] : [dw] };
  },
});
