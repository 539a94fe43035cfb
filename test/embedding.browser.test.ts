// Embedding kernels (shaders/embedding.wgsl) against shared/layers/embedding.ts in real Chromium
// WebGPU: the gather, and the weight gradient summed over repeated tokens, unused rows, one-position
// batches and a vocabulary larger than the batch.
import { describe, expect, test } from 'vitest';
import { embedding, embeddingBackward } from '../client/gpu/ops/embedding.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// The gather copies; the gradient adds each row's positions in ascending order in float32, as the
// reference does into its Float32Array: both exact.
const EXACT: Tolerance = { atol: 0, rtol: 0 };

describe('embedding vs reference', () => {
  test.for([
    { b: 1, t: 1, vocab: 1, dim: 1 },
    { b: 3, t: 7, vocab: 5, dim: 33 }, // every token repeats
    { b: 2, t: 33, vocab: 83, dim: 16 }, // the moby-dick vocabulary: most rows unused
    { b: 1, t: 5, vocab: 517, dim: 3 },
  ])('B=$b T=$t V=$vocab D=$dim', async ({ b, t, vocab, dim }) => {
    const gpu = await testGpu();
    const rng = createRng(b * 1000 + t * 100 + vocab + dim);
    const n = b * t;
    const ids = Float32Array.from({ length: n }, () => rng.int(vocab));
    const weight = randomUniform(rng, vocab * dim);
    const dy = randomUniform(rng, n * dim);
    await checkOp({
      ref: () => {
        const r = runLayerRef({ kind: 'embedding', vocab, dim }, [t], [weight], ids, b, dy);
        return { y: r.y, dweight: r.dp[0] };
      },
      gpu: async () => {
        const idsb = gpu.upload(ids);
        const y = gpu.buffer(n * dim * 4);
        // dweight starts non-zero: without accumulate the backward overwrites every row, used or not.
        const dweight = gpu.upload(new Float32Array(vocab * dim).fill(3));
        const shape = { positions: n, dim, vocab };
        gpu.submit([embedding(gpu, { ...shape, ids: idsb, weight: gpu.upload(weight), y }), embeddingBackward(gpu, { ...shape, ids: idsb, dy: gpu.upload(dy), dweight })]);
        return { y: await gpu.read(y, n * dim), dweight: await gpu.read(dweight, vocab * dim) };
      },
      tol: EXACT,
    });
  });

  test('accumulate adds the gradient to what dweight holds', async () => {
    const gpu = await testGpu();
    const [n, vocab, dim] = [9, 4, 5];
    const rng = createRng(945);
    const ids = Float32Array.from({ length: n }, () => rng.int(vocab));
    const dy = randomUniform(rng, n * dim);
    const initial = randomUniform(rng, vocab * dim);
    const r = runLayerRef({ kind: 'embedding', vocab, dim }, [n], [new Float32Array(vocab * dim)], ids, 1, dy);
    const dweight = gpu.upload(initial);
    gpu.submit([embeddingBackward(gpu, { positions: n, dim, vocab, ids: gpu.upload(ids), dy: gpu.upload(dy), dweight, accumulate: true })]);
    expectClose(await gpu.read(dweight), initial.map((v, i) => v + r.dp[0][i]), { atol: 1e-7, rtol: 1e-6 }, 'dweight');
  });

  test('an id outside [0, V) or not an integer gives a row of zeros and no gradient', async () => {
    const gpu = await testGpu();
    const [vocab, dim] = [3, 2];
    const ids = new Float32Array([0, -1, 3, 1.5, 2, 1e9]);
    const weight = new Float32Array([1, 2, 3, 4, 5, 6]);
    const y = gpu.buffer(ids.length * dim * 4);
    const dweight = gpu.buffer(vocab * dim * 4);
    const shape = { positions: ids.length, dim, vocab };
    const idsb = gpu.upload(ids);
    gpu.submit([
      embedding(gpu, { ...shape, ids: idsb, weight: gpu.upload(weight), y }),
      embeddingBackward(gpu, { ...shape, ids: idsb, dy: gpu.upload(new Float32Array(ids.length * dim).fill(1)), dweight }),
    ]);
    expect([...(await gpu.read(y))]).toEqual([1, 2, 0, 0, 0, 0, 0, 0, 5, 6, 0, 0]);
    expect([...(await gpu.read(dweight))]).toEqual([1, 1, 0, 0, 1, 1]);
  });
});
