// Reduction kernels (shaders/reduce.wgsl) against the CPU reference in real Chromium WebGPU.
import { describe, expect, test } from 'vitest';
import { colSum, reduce, type ReduceOp } from '../client/gpu/ops/reduce.ts';
import type { Dispatch, Gpu } from '../client/gpu/runtime.ts';
import { colSumRef, reduceRef } from '../shared/reference/reduce.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/** `data` at byte 256 of a larger buffer, bound as a range whose size is only a multiple of 4. */
function ranged(gpu: Gpu, data: Float32Array): GPUBufferBinding {
  const buffer = gpu.buffer(256 + data.byteLength + 256, 'ranged');
  gpu.write(buffer, data, 256);
  return { buffer, offset: 256, size: data.byteLength };
}

/** Submits `d` `times` times, then reads `n` floats of `out`; checks nothing was written outside a range. */
async function runAndRead(gpu: Gpu, d: Dispatch, out: GPUBuffer | GPUBufferBinding, n: number, times = 1): Promise<Float32Array> {
  for (let i = 0; i < times; i++) gpu.submit([d]);
  if (out instanceof GPUBuffer) return gpu.read(out, n);
  const all = await gpu.read(out.buffer);
  expect(all.subarray(0, 64).every((v) => v === 0) && all.subarray(64 + n).every((v) => v === 0), 'writes stay inside the bound range').toBe(true);
  return all.slice(64, 64 + n);
}

// The GPU sums in float32 (per-thread runs, then a tree); the reference in float64. Error grows
// like √n·ε·|partial sums|: rtol 1e-5 plus atol 1e-6·√n covers it with a margin; max is exact.
function sumTol(n: number): Tolerance {
  return { atol: 1e-6 * Math.sqrt(n), rtol: 1e-5 };
}
const EXACT: Tolerance = { atol: 0, rtol: 0 };

describe('colSum vs reference', () => {
  test.for([
    { rows: 1, cols: 1, ranges: false },
    { rows: 7, cols: 33, ranges: true },
    { rows: 33, cols: 7, ranges: false },
    { rows: 129, cols: 5, ranges: true },
    { rows: 517, cols: 3, ranges: false },
    { rows: 3, cols: 517, ranges: true },
    { rows: 1000, cols: 129, ranges: false },
  ])('B=$rows C=$cols ranges=$ranges', async ({ rows, cols, ranges }) => {
    const gpu = await testGpu();
    const x = randomUniform(createRng(rows * 3 + cols), rows * cols);
    const out = ranges ? ranged(gpu, new Float32Array(cols)) : gpu.buffer(cols * 4);
    const d = colSum(gpu, { x: ranges ? ranged(gpu, x) : gpu.upload(x), out, rows, cols });
    expectClose(await runAndRead(gpu, d, out, cols), colSumRef(x, rows, cols), sumTol(rows), 'out');
  });

  test('accumulate adds into out: initial + 2 × colSum after two submits', async () => {
    const gpu = await testGpu();
    const [rows, cols] = [33, 129];
    const rng = createRng(9);
    const x = randomUniform(rng, rows * cols);
    const initial = randomUniform(rng, cols);
    const out = gpu.upload(initial);
    const d = colSum(gpu, { x: gpu.upload(x), out, rows, cols, accumulate: true });
    const ref = colSumRef(x, rows, cols).map((v, c) => initial[c] + 2 * v);
    expectClose(await runAndRead(gpu, d, out, cols, 2), ref, sumTol(rows), 'out');
  });

  test('more than 65535 column groups: the workgroup index folds into y', async () => {
    const gpu = await testGpu();
    const [rows, cols] = [2, 64 * 65535 + 7];
    const x = randomUniform(createRng(2), rows * cols);
    const out = gpu.buffer(cols * 4);
    const d = colSum(gpu, { x: gpu.upload(x), out, rows, cols });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    expectClose(await runAndRead(gpu, d, out, cols), colSumRef(x, rows, cols), sumTol(rows), 'out');
  });
});

describe('row reduce vs reference', () => {
  const shapes = [
    { rows: 1, cols: 1 },
    { rows: 7, cols: 33 },
    { rows: 33, cols: 7 },
    { rows: 129, cols: 517 },
    { rows: 517, cols: 129 },
    { rows: 3, cols: 1000 },
  ];
  const cases = (['sum', 'mean', 'max'] as ReduceOp[]).flatMap((op) => shapes.map((s, i) => ({ op, ...s, ranges: i % 2 === 1 })));
  test.for(cases)('$op B=$rows C=$cols ranges=$ranges', async ({ op, rows, cols, ranges }) => {
    const gpu = await testGpu();
    const x = randomUniform(createRng(rows * 5 + cols), rows * cols, -2, 2);
    const out = ranges ? ranged(gpu, new Float32Array(rows)) : gpu.buffer(rows * 4);
    const d = reduce(gpu, { x: ranges ? ranged(gpu, x) : gpu.upload(x), out, rows, cols, op });
    expectClose(await runAndRead(gpu, d, out, rows), reduceRef(x, rows, cols, op), op === 'max' ? EXACT : sumTol(cols), 'out');
  });

  test.for([
    { op: 'sum', cols: 300_000 },
    { op: 'mean', cols: 300_001 },
    { op: 'max', cols: 299_999 },
  ] as { op: ReduceOp; cols: number }[])('full reduction of a vector: $op over $cols values', async ({ op, cols }) => {
    const gpu = await testGpu();
    // Positive values: the sum grows to ~1.5e5, the hardest case for float32 relative error.
    const x = randomUniform(createRng(cols), cols, 0, 1);
    const out = gpu.buffer(4);
    const d = reduce(gpu, { x: gpu.upload(x), out, rows: 1, cols, op });
    expectClose(await runAndRead(gpu, d, out, 1), reduceRef(x, 1, cols, op), op === 'max' ? EXACT : sumTol(cols), 'out');
  });

  test('accumulate: a loss summed over three steps without a readback', async () => {
    const gpu = await testGpu();
    const rows = 64;
    const losses = randomUniform(createRng(64), rows, 0, 3);
    const lossRows = gpu.upload(losses);
    const total = gpu.upload(new Float32Array([0.5]));
    const d = reduce(gpu, { x: lossRows, out: total, rows: 1, cols: rows, op: 'mean', accumulate: true });
    const mean = reduceRef(losses, 1, rows, 'mean')[0];
    expectClose(await runAndRead(gpu, d, total, 1, 3), [0.5 + 3 * mean], sumTol(rows), 'total');
  });

  test('accumulate with max adds the row max', async () => {
    const gpu = await testGpu();
    const x = new Float32Array([-3, -1, -2, 5, 4, 0]);
    const out = gpu.upload(new Float32Array([10, 20]));
    const d = reduce(gpu, { x: gpu.upload(x), out, rows: 2, cols: 3, op: 'max', accumulate: true });
    expectClose(await runAndRead(gpu, d, out, 2), [9, 25], EXACT, 'out');
  });

  test('more than 65535 rows: the workgroup index folds into y', async () => {
    const gpu = await testGpu();
    const [rows, cols] = [70_001, 3];
    const x = randomUniform(createRng(3), rows * cols);
    const out = gpu.buffer(rows * 4);
    const d = reduce(gpu, { x: gpu.upload(x), out, rows, cols, op: 'sum' });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    expectClose(await runAndRead(gpu, d, out, rows), reduceRef(x, rows, cols, 'sum'), sumTol(cols), 'out');
  });
});
