// Causal multi-head self-attention (shaders/attention.wgsl, with its projections as matmuls)
// against shared/layers/attention.ts in real Chromium WebGPU: y, the saved probabilities, dx and
// the four parameter gradients, on one position, odd lengths, one head, one channel per head, and
// parameter gradients accumulated over micro-batches.
import { describe, test } from 'vitest';
import { attention, attentionBackward } from '../client/gpu/ops/attention.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// float32 sums of C (projections), D (scores) and T (softmax, values) terms on the GPU against
// float64 in the reference; the weight gradients sum B*T rows.
const PROBS: Tolerance = { atol: 1e-6, rtol: 1e-5 };
const VALUES: Tolerance = { atol: 1e-5, rtol: 1e-4 };

interface Case {
  b: number;
  t: number;
  c: number;
  heads: number;
  accumulate: boolean;
}

const cases: Case[] = [
  { b: 1, t: 1, c: 4, heads: 1, accumulate: false }, // one position: probs = 1
  { b: 2, t: 7, c: 12, heads: 3, accumulate: false },
  { b: 1, t: 33, c: 8, heads: 2, accumulate: false },
  { b: 3, t: 5, c: 6, heads: 6, accumulate: false }, // one channel per head
  { b: 2, t: 16, c: 32, heads: 4, accumulate: true },
];

describe('attention vs reference', () => {
  test.for(cases)('B=$b T=$t C=$c heads=$heads accumulate=$accumulate', async ({ b, t, c, heads, accumulate }) => {
    const gpu = await testGpu();
    const rng = createRng(b * 1000 + t * 100 + c * 10 + heads);
    const rows = b * t;
    const x = randomUniform(rng, rows * c);
    const inWeight = randomUniform(rng, 3 * c * c, -Math.sqrt(6 / (4 * c)), Math.sqrt(6 / (4 * c)));
    const inBias = randomUniform(rng, 3 * c, -0.1, 0.1);
    const outWeight = randomUniform(rng, c * c, -1 / Math.sqrt(c), 1 / Math.sqrt(c));
    const outBias = randomUniform(rng, c, -0.1, 0.1);
    const dy = randomUniform(rng, rows * c);
    const p = [inWeight, inBias, outWeight, outBias];
    // With accumulate, the gradient buffers start at these and the expected values add them.
    const initial = p.map((t) => (accumulate ? randomUniform(rng, t.length) : new Float32Array(t.length)));
    const names = ['dInWeight', 'dInBias', 'dOutWeight', 'dOutBias'] as const;
    await checkOp({
      ref: () => {
        const r = runLayerRef({ kind: 'attention', heads }, [t, c], p, x, b, dy);
        const grads = Object.fromEntries(names.map((n, i) => [n, r.dp[i].map((v, j) => v + initial[i][j])]));
        return { y: r.y, probs: (r.cache as { probs: Float32Array }).probs, dx: r.dx, ...grads };
      },
      gpu: async () => {
        const shape = { batch: b, t, c, heads };
        const [inW, outW] = [gpu.upload(inWeight), gpu.upload(outWeight)];
        const xb = gpu.upload(x);
        const qkv = gpu.buffer(rows * 3 * c * 4);
        const probs = gpu.buffer(b * heads * t * t * 4);
        const o = gpu.buffer(rows * c * 4);
        const y = gpu.buffer(rows * c * 4);
        const dx = gpu.buffer(rows * c * 4);
        const grads = initial.map((v) => gpu.upload(v));
        gpu.submit([
          ...attention(gpu, { ...shape, x: xb, inWeight: inW, inBias: gpu.upload(inBias), outWeight: outW, outBias: gpu.upload(outBias), qkv, probs, o, y }),
          ...attentionBackward(gpu, {
            ...shape,
            x: xb,
            qkv,
            probs,
            o,
            inWeight: inW,
            outWeight: outW,
            dy: gpu.upload(dy),
            dO: gpu.buffer(rows * c * 4),
            dscores: gpu.buffer(b * heads * t * t * 4),
            dqkv: gpu.buffer(rows * 3 * c * 4),
            dx,
            dInWeight: grads[0],
            dInBias: grads[1],
            dOutWeight: grads[2],
            dOutBias: grads[3],
            accumulate,
          }),
        ]);
        const out: Record<string, Float32Array> = { y: await gpu.read(y), probs: await gpu.read(probs), dx: await gpu.read(dx) };
        for (const [i, n] of names.entries()) out[n] = await gpu.read(grads[i]);
        return out;
      },
      tol: { y: VALUES, probs: PROBS, dx: VALUES, dInWeight: VALUES, dInBias: VALUES, dOutWeight: VALUES, dOutBias: VALUES },
    });
  });
});
