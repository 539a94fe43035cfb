// The elementwise add (shaders/add.wgsl) against shared/layers' positional reference (the learned
// positions added to every example; their gradient is reduce.wgsl's column sum over the batch) and
// plain sums for the residual add and an in-place bias, in real Chromium WebGPU.
import { describe, test } from 'vitest';
import { add, addInPlace } from '../client/gpu/ops/add.ts';
import { colSum } from '../client/gpu/ops/reduce.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// One float32 add per element on both sides: exact. The column sum over B examples: a few ulp.
const EXACT: Tolerance = { atol: 0, rtol: 0 };
const SUM: Tolerance = { atol: 1e-6, rtol: 1e-5 };

describe('positional (x + P, P repeated over the batch) vs reference', () => {
  test.for([
    { b: 1, t: 1, c: 1 },
    { b: 3, t: 7, c: 5 },
    { b: 2, t: 33, c: 16 },
  ])('B=$b [$t,$c]', async ({ b, t, c }) => {
    const gpu = await testGpu();
    const rng = createRng(b * 100 + t * 10 + c);
    const n = b * t * c;
    const x = randomUniform(rng, n);
    const pos = randomUniform(rng, t * c);
    const dy = randomUniform(rng, n);
    await checkOp({
      ref: () => {
        const r = runLayerRef({ kind: 'positional' }, [t, c], [pos], x, b, dy);
        return { y: r.y, dweight: r.dp[0] };
      },
      gpu: async () => {
        const y = gpu.buffer(n * 4);
        const dweight = gpu.buffer(t * c * 4);
        gpu.submit([add(gpu, { a: gpu.upload(x), b: gpu.upload(pos), out: y, n, nb: t * c }), colSum(gpu, { x: gpu.upload(dy), out: dweight, rows: b, cols: t * c })]);
        return { y: await gpu.read(y, n), dweight: await gpu.read(dweight, t * c) };
      },
      tol: { y: EXACT, dweight: SUM },
    });
  });
});

describe('residual add and in-place bias', () => {
  test.for([{ n: 1 }, { n: 33 }, { n: 517 }, { n: 70_001 }])('x + f(x), n=$n', async ({ n }) => {
    const gpu = await testGpu();
    const rng = createRng(n);
    const x = randomUniform(rng, n);
    const fx = randomUniform(rng, n);
    await checkOp({
      ref: () => ({ y: x.map((v, i) => v + fx[i]) }),
      gpu: async () => {
        const y = gpu.buffer(n * 4);
        gpu.submit([add(gpu, { a: gpu.upload(x), b: gpu.upload(fx), out: y, n })]);
        return { y: await gpu.read(y, n) };
      },
      tol: EXACT,
    });
  });

  test.for([
    { rows: 1, cols: 1 },
    { rows: 7, cols: 33 },
    { rows: 129, cols: 3 },
  ])('rows [$rows,$cols] += bias', async ({ rows, cols }) => {
    const gpu = await testGpu();
    const rng = createRng(rows * 7 + cols);
    const x = randomUniform(rng, rows * cols);
    const bias = randomUniform(rng, cols);
    await checkOp({
      ref: () => ({ y: x.map((v, i) => v + bias[i % cols]) }),
      gpu: async () => {
        const y = gpu.upload(x);
        gpu.submit([addInPlace(gpu, { out: y, b: gpu.upload(bias), n: rows * cols, nb: cols })]);
        return { y: await gpu.read(y, rows * cols) };
      },
      tol: EXACT,
    });
  });
});
