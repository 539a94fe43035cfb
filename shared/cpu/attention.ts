// attention on the CPU: the four projections as register-blocked products; the causal
// softmax(QKᵀ)V between them is the reference's (T² work per head, small beside the projections).
import { attentionCore, attentionCoreBackward, attentionDims, type AttentionCache, type AttentionConfig } from '../layers/attention.ts';
import { registerCpuKernels } from './kernels.ts';
import { linearBackward, linearForward } from './linear.ts';

registerCpuKernels('attention', {
  forward(cfg, inShape, p, x, batch) {
    const { t, c, h } = attentionDims(cfg as AttentionConfig, inShape);
    const rows = batch * t;
    const qkv = linearForward(x, rows, c, p[0], p[1], 3 * c);
    const { probs, o } = attentionCore(qkv, batch, t, c, h);
    const cache: AttentionCache = { x, qkv, probs, o };
    return { y: linearForward(o, rows, c, p[2], p[3], c), cache };
  },
  backward(cfg, inShape, p, cache, dy, batch) {
    const { t, c, h } = attentionDims(cfg as AttentionConfig, inShape);
    const { x, qkv, probs, o } = cache as AttentionCache;
    const rows = batch * t;
    const out = linearBackward(o, dy, rows, c, p[2], c);
    const dqkv = attentionCoreBackward(qkv, probs, out.dx, batch, t, c, h);
    const inp = linearBackward(x, dqkv, rows, c, p[0], 3 * c);
    return { dx: inp.dx, dp: [inp.dw, inp.db!, out.dw, out.db!] };
  },
});
