// bias-act kernels (shaders/bias-act.wgsl) against the CPU reference in real Chromium WebGPU.
import { describe, expect, test } from 'vitest';
import { biasAct, biasActBackward, type Activation } from '../client/gpu/ops/bias-act.ts';
import type { Gpu } from '../client/gpu/runtime.ts';
import { biasActBackwardRef, biasActRef } from '../shared/reference/bias-act.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/** `data` placed at byte 256 of a larger buffer, bound as a range whose size is only a multiple of 4. */
function ranged(gpu: Gpu, data: Float32Array): GPUBufferBinding {
  const buffer = gpu.buffer(256 + data.byteLength + 256, 'ranged');
  gpu.write(buffer, data, 256);
  return { buffer, offset: 256, size: data.byteLength };
}

async function runBoth(gpu: Gpu, x: Float32Array, bias: Float32Array, dy: Float32Array, rows: number, cols: number, act: Activation, useRanges: boolean) {
  const bind = (d: Float32Array) => (useRanges ? ranged(gpu, d) : gpu.upload(d));
  const y = bind(new Float32Array(rows * cols));
  const dx = bind(new Float32Array(rows * cols));
  const xb = bind(x);
  const bb = bind(bias);
  gpu.submit([
    biasAct(gpu, { x: xb, bias: bb, y, rows, cols, act }),
    biasActBackward(gpu, { x: xb, bias: bb, dy: bind(dy), dx, rows, cols, act }),
  ]);
  const read = async (b: GPUBuffer | GPUBufferBinding) => {
    if (b instanceof GPUBuffer) return gpu.read(b, rows * cols);
    // The whole buffer, to see that nothing outside the range was written.
    const all = await gpu.read(b.buffer);
    expect(all.subarray(0, 64).every((v) => v === 0) && all.subarray(64 + rows * cols).every((v) => v === 0), 'writes stay inside the bound range').toBe(true);
    return all.slice(64, 64 + rows * cols);
  };
  return { y: await read(y), dx: await read(dx) };
}

// relu and none are exact: x + bias is one correctly rounded f32 add on both sides. gelu goes
// through exp() and a division, a few ulp each: rtol 2e-6 plus atol 1e-6 near its zero crossing.
const EXACT: Tolerance = { atol: 0, rtol: 0 };
const GELU: Tolerance = { atol: 1e-6, rtol: 2e-6 };

describe('bias-act vs reference', () => {
  const shapes = [
    [1, 1],
    [7, 33],
    [33, 7],
    [129, 5],
    [3, 517],
    [517, 33],
  ];
  const cases = (['none', 'relu', 'gelu'] as Activation[]).flatMap((act) =>
    shapes.map(([rows, cols], i) => ({ act, rows, cols, ranges: i % 2 === 1, tol: act === 'gelu' ? GELU : EXACT })),
  );
  test.for(cases)('$act B=$rows C=$cols ranges=$ranges', async ({ act, rows, cols, ranges, tol }) => {
    const gpu = await testGpu();
    const rng = createRng(rows * 1000 + cols);
    const x = randomUniform(rng, rows * cols, -4, 4);
    const bias = randomUniform(rng, cols, -1, 1);
    const dy = randomUniform(rng, rows * cols);
    await checkOp({
      ref: () => ({ y: biasActRef(x, bias, rows, cols, act), dx: biasActBackwardRef(x, bias, dy, rows, cols, act) }),
      gpu: () => runBoth(gpu, x, bias, dy, rows, cols, act, ranges),
      tol,
    });
  });

  test('more than 65535 workgroups of elements: the index folds into y', async () => {
    const gpu = await testGpu();
    const rows = 4097;
    const cols = 4097; // 16.8M elements = 65568 workgroups of 256
    const rng = createRng(4097);
    const x = randomUniform(rng, rows * cols, -1, 1);
    const bias = randomUniform(rng, cols, -1, 1);
    const y = gpu.buffer(x.byteLength);
    const d = biasAct(gpu, { x: gpu.upload(x), bias: gpu.upload(bias), y, rows, cols, act: 'relu' });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    gpu.submit([d]);
    expectClose(await gpu.read(y), biasActRef(x, bias, rows, cols, 'relu'), EXACT, 'y');
  });

  test('gelu at large |x| and around the saturation switch stays finite and matches', async () => {
    const gpu = await testGpu();
    const x = new Float32Array([1e4, -1e4, 1e30, -1e30, 3e38, -3e38, 9.99, -9.99, 10.01, -10.01, 20, -20, 0, -1e-7]);
    const bias = new Float32Array([0]);
    const dy = new Float32Array(x.length).fill(1);
    const rows = x.length;
    const got = await runBoth(gpu, x, bias, dy, rows, 1, 'gelu', false);
    expect(got.y.every(Number.isFinite) && got.dx.every(Number.isFinite), `finite: y ${got.y} dx ${got.dx}`).toBe(true);
    expectClose(got.y, biasActRef(x, bias, rows, 1, 'gelu'), GELU, 'y');
    expectClose(got.dx, biasActBackwardRef(x, bias, dy, rows, 1, 'gelu'), GELU, 'dx');
  });
});
