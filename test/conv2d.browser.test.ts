// Convolution (shaders/conv2d.wgsl with the shared matmul) against shared/layers/conv2d.ts in real
// Chromium WebGPU: y, dx, dweight and dbias, on odd sizes, strides, padding, one-row images,
// accumulated gradients, a first layer without dx, and scratch buffers shared as the wrapper allows.
import { describe, expect, test } from 'vitest';
import { conv2d, conv2dBackward, conv2dDims } from '../client/gpu/ops/conv2d.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// y and dx sum C·K² (O·K²) products in float32 against float64 in the reference; the parameter
// gradients sum B·Ho·Wo products, so their atol grows like the square root of that count.
const Y: Tolerance = { atol: 1e-5, rtol: 1e-4 };
const paramTol = (terms: number): Tolerance => ({ atol: 2e-6 * Math.sqrt(terms), rtol: 1e-4 });

interface Case {
  b: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  stride: number;
  padding: number;
  accumulate: boolean;
  /** Reuse conv2d's rows as dyRows and cols as dcols (the wrapper allows both). */
  shareScratch: boolean;
}

const base = { stride: 1, padding: 0, accumulate: false, shareScratch: false };
const cases: Case[] = [
  { ...base, b: 1, c: 1, h: 1, w: 1, o: 1, k: 1 },
  { ...base, b: 2, c: 3, h: 7, w: 7, o: 5, k: 3, shareScratch: true },
  { ...base, b: 1, c: 2, h: 9, w: 11, o: 7, k: 3, stride: 2, padding: 1 },
  { ...base, b: 3, c: 1, h: 8, w: 6, o: 4, k: 5, padding: 2 },
  { ...base, b: 1, c: 5, h: 10, w: 9, o: 6, k: 4, stride: 3 }, // leftover rows and columns
  { ...base, b: 2, c: 4, h: 5, w: 5, o: 9, k: 2, stride: 2, padding: 1 },
  { ...base, b: 1, c: 2, h: 1, w: 33, o: 3, k: 1 }, // a one-row image
  { ...base, b: 2, c: 3, h: 3, w: 33, o: 2, k: 3, padding: 1 },
  { ...base, b: 2, c: 8, h: 12, w: 12, o: 16, k: 5, accumulate: true, shareScratch: true }, // the MNIST CNN's second layer
];

describe('conv2d vs reference', () => {
  test.for(cases)('B=$b [$c,$h,$w] -> $o k=$k stride=$stride padding=$padding accumulate=$accumulate shared=$shareScratch', async (cs) => {
    const { b, c, h, w, o, k, stride, padding, accumulate, shareScratch } = cs;
    const gpu = await testGpu();
    const shape = { batch: b, channels: c, height: h, width: w, out: o, kernel: k, stride, padding };
    const { ho, wo, positions, taps } = conv2dDims(shape);
    const rng = createRng(b * 7919 + c * 997 + h * 101 + w * 13 + o * 7 + k + stride * 3 + padding);
    const x = randomUniform(rng, b * c * h * w);
    const bound = 1 / Math.sqrt(c * k * k);
    const weight = randomUniform(rng, o * c * k * k, -bound, bound);
    const bias = randomUniform(rng, o, -bound, bound);
    const dy = randomUniform(rng, b * o * ho * wo);
    // With accumulate, the gradient buffers start at these and the expected values add them.
    const initW = accumulate ? randomUniform(rng, weight.length) : new Float32Array(weight.length);
    const initB = accumulate ? randomUniform(rng, o) : new Float32Array(o);
    const tol = paramTol(b * ho * wo);
    await checkOp({
      ref: () => {
        const r = runLayerRef({ kind: 'conv2d', out: o, kernel: k, stride, padding }, [c, h, w], [weight, bias], x, b, dy);
        return { y: r.y, dx: r.dx, dweight: r.dp[0].map((v, i) => v + initW[i]), dbias: r.dp[1].map((v, i) => v + initB[i]) };
      },
      gpu: async () => {
        const xb = gpu.upload(x);
        const wb = gpu.upload(weight);
        const dyb = gpu.upload(dy);
        const y = gpu.buffer(b * o * ho * wo * 4);
        // dx starts non-zero: the input gradient overwrites, including where no window reaches.
        const dx = gpu.upload(new Float32Array(x.length).fill(5));
        const dweight = gpu.upload(initW);
        const dbias = gpu.upload(initB);
        const cols = gpu.buffer(positions * taps * 4);
        const rows = gpu.buffer(positions * o * 4);
        gpu.submit([
          ...conv2d(gpu, { ...shape, x: xb, weight: wb, bias: gpu.upload(bias), cols, rows, y }),
          ...conv2dBackward(gpu, {
            ...shape,
            dy: dyb,
            cols,
            weight: wb,
            dyRows: shareScratch ? rows : gpu.buffer(positions * o * 4),
            dweight,
            dbias,
            accumulate,
            dx,
            dcols: shareScratch ? cols : gpu.buffer(positions * taps * 4),
          }),
        ]);
        return { y: await gpu.read(y), dx: await gpu.read(dx), dweight: await gpu.read(dweight), dbias: await gpu.read(dbias) };
      },
      tol: { y: Y, dx: Y, dweight: tol, dbias: tol },
    });
  });

  test('a first layer skips the input gradient: three dispatches', async () => {
    const gpu = await testGpu();
    const shape = { batch: 3, channels: 1, height: 9, width: 8, out: 4, kernel: 5, padding: 1 };
    const { ho, wo, positions, taps } = conv2dDims(shape);
    const rng = createRng(31);
    const x = randomUniform(rng, 3 * 9 * 8);
    const weight = randomUniform(rng, 4 * 25, -0.2, 0.2);
    const dy = randomUniform(rng, 3 * 4 * ho * wo);
    const r = runLayerRef({ kind: 'conv2d', out: 4, kernel: 5, padding: 1 }, [1, 9, 8], [weight, new Float32Array(4)], x, 3, dy);
    const cols = gpu.buffer(positions * taps * 4);
    const rows = gpu.buffer(positions * 4 * 4);
    const dweight = gpu.buffer(weight.byteLength);
    const dbias = gpu.buffer(16);
    const wb = gpu.upload(weight);
    const backward = conv2dBackward(gpu, { ...shape, dy: gpu.upload(dy), cols, weight: wb, dyRows: rows, dweight, dbias });
    expect(backward).toHaveLength(3);
    gpu.submit([...conv2d(gpu, { ...shape, x: gpu.upload(x), weight: wb, bias: gpu.upload(new Float32Array(4)), cols, rows, y: gpu.buffer(positions * 4 * 4) }), ...backward]);
    const tol = paramTol(3 * ho * wo);
    expectClose(await gpu.read(dweight), r.dp[0], tol, 'dweight');
    expectClose(await gpu.read(dbias), r.dp[1], tol, 'dbias');
  });
});
