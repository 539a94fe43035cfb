// Fused softmax + cross-entropy kernel (shaders/softmax-ce.wgsl) against the CPU reference in
// real Chromium WebGPU.
import { describe, expect, test } from 'vitest';
import { softmaxCrossEntropy, type SoftmaxCeLayout } from '../client/gpu/ops/softmax-ce.ts';
import type { Gpu } from '../client/gpu/runtime.ts';
import { softmaxCrossEntropyRef } from '../shared/reference/softmax-ce.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/** `data` at byte 256 of a larger buffer, bound as a range whose size is only a multiple of 4. */
function ranged(gpu: Gpu, data: Float32Array | Uint32Array): GPUBufferBinding {
  const buffer = gpu.buffer(256 + data.byteLength + 256, 'ranged');
  gpu.write(buffer, data, 256);
  return { buffer, offset: 256, size: data.byteLength };
}

async function run(gpu: Gpu, logits: Float32Array, labels: Uint32Array, rows: number, classes: number, useRanges: boolean, layout?: SoftmaxCeLayout) {
  const bind = (d: Float32Array | Uint32Array) => (useRanges ? ranged(gpu, d) : gpu.upload(d));
  const loss = bind(new Float32Array(rows).fill(NaN));
  const dlogits = bind(new Float32Array(rows * classes).fill(NaN));
  const d = softmaxCrossEntropy(gpu, { logits: bind(logits), labels: bind(labels), loss, dlogits, rows, classes, layout });
  gpu.submit([d]);
  const read = async (b: GPUBuffer | GPUBufferBinding, n: number) =>
    b instanceof GPUBuffer ? gpu.read(b, n) : gpu.read(b.buffer, n, (b.offset ?? 0) / 4);
  return { loss: await read(loss, rows), dlogits: await read(dlogits, rows * classes), workgroups: d.workgroups };
}

// exp and log are a few ulp on the GPU; the loss is log(Σ) - (x_label - max) with the max
// subtracted in f32 (the reference subtracts in float64), so its error scales with |logits|.
const MODERATE: Record<string, Tolerance> = { loss: { atol: 2e-6, rtol: 1e-5 }, dlogits: { atol: 1e-7, rtol: 1e-5 } };
const HUGE: Record<string, Tolerance> = { loss: { atol: 2e-3, rtol: 1e-6 }, dlogits: { atol: 1e-7, rtol: 1e-5 } };

describe('softmax cross-entropy vs reference', () => {
  test.for([
    { rows: 1, classes: 1, scale: 3, ranges: false, tol: MODERATE },
    { rows: 7, classes: 10, scale: 3, ranges: true, tol: MODERATE },
    { rows: 33, classes: 7, scale: 3, ranges: false, tol: MODERATE },
    { rows: 129, classes: 33, scale: 8, ranges: true, tol: MODERATE },
    { rows: 5, classes: 517, scale: 8, ranges: false, tol: MODERATE },
    { rows: 3, classes: 1000, scale: 3, ranges: true, tol: MODERATE },
    { rows: 517, classes: 129, scale: 3, ranges: false, tol: MODERATE },
    { rows: 17, classes: 33, scale: 1e4, ranges: false, tol: HUGE },
  ].flatMap((c) => (['invocation-per-row', 'workgroup-per-row'] as const).map((layout) => ({ ...c, layout }))))('B=$rows V=$classes logits ±$scale ranges=$ranges $layout', async ({ rows, classes, scale, ranges, tol, layout }) => {
    const gpu = await testGpu();
    const rng = createRng(rows * 31 + classes);
    const logits = randomUniform(rng, rows * classes, -scale, scale);
    const labels = Uint32Array.from({ length: rows }, () => rng.int(classes));
    await checkOp({
      ref: () => {
        const r = softmaxCrossEntropyRef(logits, labels, rows, classes);
        return { loss: r.loss, dlogits: r.dlogits };
      },
      gpu: () => run(gpu, logits, labels, rows, classes, ranges, layout),
      tol,
    });
  });

  test('logits of exactly ±1e4, ties at the max, and an ignored label stay finite and correct', async () => {
    const gpu = await testGpu();
    const logits = new Float32Array([1e4, -1e4, 0, -1e4, 1e4, 1e4, 1e4, 1e4, -1e4, -1e4, -1e4, -1e4]);
    const labels = new Uint32Array([1, 2, 0, 7]);
    const got = await run(gpu, logits, labels, 4, 3, false);
    expect([...got.loss, ...got.dlogits].every(Number.isFinite)).toBe(true);
    const ref = softmaxCrossEntropyRef(logits, labels, 4, 3);
    await checkOp({ ref: () => ({ loss: ref.loss, dlogits: ref.dlogits }), gpu: async () => got, tol: HUGE });
    expect(got.loss[0]).toBe(2e4);
  });

  test('more than 65535 rows a workgroup each: the workgroup index folds into y', async () => {
    const gpu = await testGpu();
    const rows = 70_001;
    const classes = 3;
    const rng = createRng(70_001);
    const logits = randomUniform(rng, rows * classes, -3, 3);
    const labels = Uint32Array.from({ length: rows }, () => rng.int(classes));
    const got = await run(gpu, logits, labels, rows, classes, false, 'workgroup-per-row');
    expect(got.workgroups[1]).toBeGreaterThan(1);
    const ref = softmaxCrossEntropyRef(logits, labels, rows, classes);
    await checkOp({ ref: () => ({ loss: ref.loss, dlogits: ref.dlogits }), gpu: async () => got, tol: MODERATE });
  });
});
