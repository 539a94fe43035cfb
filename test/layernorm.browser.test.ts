// Layer-norm kernels (shaders/layernorm.wgsl) against shared/layers/layernorm.ts in real Chromium
// WebGPU: y, the saved statistics, dx, dweight and dbias, on one-column rows, odd widths, rows far
// from zero, and enough rows for several threads per column.
import { describe, expect, test } from 'vitest';
import { layerNorm, layerNormBackward, layerNormParamsBackward } from '../client/gpu/ops/layernorm.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// The GPU sums a row in float32, the reference in float64; errors grow with C and with 1/std
// (dx is scaled by rstd). Rows around 100 lose digits to the mean (2e-5 measured on y). The
// parameter gradients sum R rows: atol grows like √R.
const Y: Tolerance = { atol: 5e-5, rtol: 1e-4 };
const DX: Tolerance = { atol: 5e-5, rtol: 1e-3 };
const paramTol = (rows: number): Tolerance => ({ atol: 2e-6 * Math.sqrt(rows), rtol: 1e-4 });

interface Case {
  b: number;
  shape: number[];
  /** Added to every input: rows far from zero test the two-pass variance. */
  offset: number;
  eps: number;
}

const cases: Case[] = [
  { b: 1, shape: [1], offset: 0, eps: 1e-5 }, // a one-column row: x̂ = 0, y = bias, dx = 0
  { b: 3, shape: [7], offset: 0, eps: 1e-5 },
  { b: 2, shape: [5, 33], offset: 0, eps: 1e-5 },
  { b: 5, shape: [13, 7], offset: 0, eps: 1e-5 }, // 65 rows: four threads per column in the parameter pass
  { b: 2, shape: [9, 16], offset: 100, eps: 1e-5 },
  { b: 1, shape: [3, 129], offset: 0, eps: 1e-3 },
];

describe('layernorm vs reference', () => {
  test.for(cases)('B=$b shape=$shape offset=$offset eps=$eps', async ({ b, shape, offset, eps }) => {
    const gpu = await testGpu();
    const cols = shape[shape.length - 1];
    const rows = (b * shape.reduce((s, v) => s * v, 1)) / cols;
    const n = rows * cols;
    const rng = createRng(rows * 31 + cols);
    const x = randomUniform(rng, n, offset - 2, offset + 2);
    const weight = randomUniform(rng, cols, 0.5, 1.5);
    const bias = randomUniform(rng, cols);
    const dy = randomUniform(rng, n);
    await checkOp({
      ref: () => {
        const r = runLayerRef({ kind: 'layernorm', eps }, shape, [weight, bias], x, b, dy);
        return { y: r.y, rstd: (r.cache as { rstd: Float32Array }).rstd, dx: r.dx, dweight: r.dp[0], dbias: r.dp[1] };
      },
      gpu: async () => {
        const xb = gpu.upload(x);
        const wb = gpu.upload(weight);
        const dyb = gpu.upload(dy);
        const y = gpu.buffer(n * 4);
        const stats = gpu.buffer(2 * rows * 4);
        const dx = gpu.buffer(n * 4);
        const dweight = gpu.buffer(cols * 4);
        const dbias = gpu.buffer(cols * 4);
        gpu.submit([
          layerNorm(gpu, { x: xb, weight: wb, bias: gpu.upload(bias), y, stats, rows, cols, eps }),
          layerNormBackward(gpu, { x: xb, weight: wb, stats, dy: dyb, dx, rows, cols }),
          layerNormParamsBackward(gpu, { x: xb, stats, dy: dyb, dweight, dbias, rows, cols }),
        ]);
        const st = await gpu.read(stats, 2 * rows);
        return { y: await gpu.read(y, n), rstd: st.subarray(rows), dx: await gpu.read(dx, n), dweight: await gpu.read(dweight, cols), dbias: await gpu.read(dbias, cols) };
      },
      tol: { y: Y, rstd: { atol: 0, rtol: 1e-5 }, dx: DX, dweight: paramTol(rows), dbias: paramTol(rows) },
    });
  });

  test('accumulate adds the parameter gradients to what the buffers hold', async () => {
    const gpu = await testGpu();
    const rows = 7;
    const cols = 5;
    const rng = createRng(75);
    const x = randomUniform(rng, rows * cols);
    const dy = randomUniform(rng, rows * cols);
    const weight = new Float32Array(cols).fill(1);
    const initial = randomUniform(rng, cols);
    const r = runLayerRef({ kind: 'layernorm' }, [cols], [weight, new Float32Array(cols)], x, rows, dy);
    const xb = gpu.upload(x);
    const stats = gpu.buffer(2 * rows * 4);
    const dweight = gpu.upload(initial);
    const dbias = gpu.upload(initial);
    gpu.submit([
      layerNorm(gpu, { x: xb, weight: gpu.upload(weight), bias: gpu.upload(new Float32Array(cols)), y: gpu.buffer(rows * cols * 4), stats, rows, cols }),
      layerNormParamsBackward(gpu, { x: xb, stats, dy: gpu.upload(dy), dweight, dbias, rows, cols, accumulate: true }),
    ]);
    const tol = paramTol(rows);
    expectClose(await gpu.read(dweight, cols), initial.map((v, i) => v + r.dp[0][i]), tol, 'dweight');
    expectClose(await gpu.read(dbias, cols), initial.map((v, i) => v + r.dp[1][i]), tol, 'dbias');
    expect(r.dp[0].some((v) => v !== 0)).toBe(true);
  });
});
