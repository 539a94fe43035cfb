// residual on the CPU: its inner layers through the CPU kernels (the reference residual would
// run them through the plain-loop references).
import { describeModel, forwardRange, backwardRange } from '../layers/sequence.ts';
import { flatOf, type ResidualConfig } from '../layers/residual.ts';
import { cpuKernels, registerCpuKernels } from './kernels.ts';

registerCpuKernels('residual', {
  forward(cfg, inShape, p, x, batch) {
    const d = describeModel((cfg as ResidualConfig).layers, inShape, 'fn.');
    const flat = flatOf(p);
    const f = forwardRange(d, flat, x, batch, { kernels: cpuKernels });
    const y = new Float32Array(f.y.length);
    for (let i = 0; i < y.length; i++) y[i] = x[i] + f.y[i];
    return { y, cache: { d, caches: f.caches, flat } };
  },
  backward(_cfg, _inShape, _p, cache, dy, batch) {
    const { d, caches, flat } = cache as { d: ReturnType<typeof describeModel>; caches: unknown[]; flat: Float32Array };
    const grads = new Float32Array(flat.length);
    const dxInner = backwardRange(d, flat, caches, dy, batch, grads, { kernels: cpuKernels });
    const dx = new Float32Array(dy.length);
    for (let i = 0; i < dx.length; i++) dx[i] = dy[i] + dxInner[i];
    return { dx, dp: d.layers.flatMap((l) => l.params.map((q) => grads.subarray(q.offset, q.offset + q.size))) };
  },
});
