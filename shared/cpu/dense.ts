// dense on the CPU: y = x·Wᵀ + b and its backward as register-blocked products, through the
// input's nonzeros when it is mostly zeros (pixels, relu outputs).
import type { DenseConfig } from '../layers/dense.ts';
import { sizeOf } from '../layers/layer.ts';
import type { SparseRows } from './gemm.ts';
import { registerCpuKernels } from './kernels.ts';
import { linearBackward, linearForward, sparseInput } from './linear.ts';

interface DenseCache {
  x: Float32Array;
  sparse: SparseRows | null;
}

registerCpuKernels('dense', {
  forward(cfg, inShape, p, x, batch) {
    const n = inShape[inShape.length - 1];
    const rows = (batch * sizeOf(inShape)) / n;
    const sparse = sparseInput(x, rows, n);
    const cache: DenseCache = { x, sparse };
    return { y: linearForward(x, rows, n, p[0], p[1], (cfg as DenseConfig).out, sparse), cache };
  },
  backward(cfg, inShape, p, cache, dy, batch, inputGrad = true) {
    const { out, bias } = cfg as DenseConfig;
    const n = inShape[inShape.length - 1];
    const rows = (batch * sizeOf(inShape)) / n;
    const { x, sparse } = cache as DenseCache;
    const { dx, dw, db } = linearBackward(x, dy, rows, n, p[0], out, { withBias: bias !== false, inputGrad, sparse });
    return { dx, dp: db ? [dw, db] : [dw] };
  },
});
