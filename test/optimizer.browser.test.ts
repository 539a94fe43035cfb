// Optimizer kernels (shaders/optimizer.wgsl) against the CPU reference in real Chromium WebGPU:
// three steps of each kind, with the learning rate changing between steps.
import { describe, expect, test } from 'vitest';
import { optimizerStateCount, optimizerStep, setOptimizerStep, type OptimizerConfig } from '../client/gpu/ops/optimizer.ts';
import type { Gpu } from '../client/gpu/runtime.ts';
import { optimizerStepRef } from '../shared/reference/optimizer.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/** `data` at byte 256 of a larger buffer, bound as a range whose size is only a multiple of 4. */
function ranged(gpu: Gpu, data: Float32Array): GPUBufferBinding {
  const buffer = gpu.buffer(256 + data.byteLength + 256, 'ranged');
  gpu.write(buffer, data, 256);
  return { buffer, offset: 256, size: data.byteLength };
}

async function readBinding(gpu: Gpu, b: GPUBuffer | GPUBufferBinding, n: number): Promise<Float32Array> {
  if (b instanceof GPUBuffer) return gpu.read(b, n);
  const all = await gpu.read(b.buffer);
  expect(all.subarray(0, 64).every((v) => v === 0) && all.subarray(64 + n).every((v) => v === 0), 'writes stay inside the bound range').toBe(true);
  return all.slice(64, 64 + n);
}

// The kernel does the update in float32, the reference in float64 rounded to float32 on store:
// a few ulp of the parameters (|p| < 2) and of the state after three steps. Adam also divides
// and takes a square root (a few ulp each, relative to the step lr·m̂/√v̂). m = β1·m + (1-β1)·g
// can cancel to far below its terms (|g| < 1), so its error is absolute: a few ulp of 1.
const TOL: Record<OptimizerConfig['kind'], { p: Tolerance; state: Tolerance }> = {
  sgd: { p: { atol: 1e-7, rtol: 1e-6 }, state: { atol: 0, rtol: 0 } },
  momentum: { p: { atol: 1e-7, rtol: 1e-6 }, state: { atol: 1e-7, rtol: 1e-6 } },
  adam: { p: { atol: 1e-7, rtol: 1e-6 }, state: { atol: 2e-7, rtol: 1e-6 } },
  adamw: { p: { atol: 1e-7, rtol: 1e-6 }, state: { atol: 2e-7, rtol: 1e-6 } },
};

describe('optimizer vs reference, steps t = 1..3', () => {
  const configs: OptimizerConfig[] = [
    { kind: 'sgd', lr: 0.1 },
    { kind: 'sgd', lr: 0.05, weightDecay: 0.01 },
    { kind: 'momentum', lr: 0.1 },
    { kind: 'momentum', lr: 0.03, momentum: 0.5, weightDecay: 1e-3 },
    { kind: 'adam', lr: 1e-2 },
    { kind: 'adam', lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 },
    { kind: 'adamw', lr: 1e-2 },
    { kind: 'adamw', lr: 1e-3, beta2: 0.95, weightDecay: 0.1 },
  ];
  const counts = [1, 7, 33, 129, 517];
  const cases = configs.flatMap((config, i) => counts.map((count, j) => ({ config, count, ranges: (i + j) % 2 === 1 })));
  test.for(cases)('$config.kind lr=$config.lr wd=$config.weightDecay N=$count ranges=$ranges', async ({ config, count, ranges }) => {
    const gpu = await testGpu();
    const rng = createRng(count * 13 + config.lr * 1e4);
    const bind = (d: Float32Array) => (ranges ? ranged(gpu, d) : gpu.upload(d));
    const params = randomUniform(rng, count);
    const stateCount = optimizerStateCount(config.kind);
    const ref = { params: params.slice(), m: new Float32Array(count), v: new Float32Array(count) };
    const p = bind(params);
    const g = bind(new Float32Array(count));
    const m = stateCount >= 1 ? bind(new Float32Array(count)) : undefined;
    const v = stateCount >= 2 ? bind(new Float32Array(count)) : undefined;
    const d = optimizerStep(gpu, { params: p, grads: g, m, v, count, config });
    for (let t = 1; t <= 3; t++) {
      const step = { ...config, lr: config.lr * (1 - 0.2 * (t - 1)) }; // a decaying schedule
      const grads = randomUniform(rng, count, -1, 1);
      gpu.write(g instanceof GPUBuffer ? g : g.buffer, grads, g instanceof GPUBuffer ? 0 : g.offset);
      setOptimizerStep(gpu, d, step, t);
      gpu.submit([d]);
      optimizerStepRef(ref.params, grads, ref, step, t);
    }
    const tol = TOL[config.kind];
    expectClose(await readBinding(gpu, p, count), ref.params, tol.p, 'params after t=3');
    if (m) expectClose(await readBinding(gpu, m, count), ref.m, tol.state, 'm after t=3');
    if (v) expectClose(await readBinding(gpu, v, count), ref.v, tol.state, 'v after t=3');
  });

  test('t = 1 ignores whatever the state buffers held (PyTorch starts from zero state)', async () => {
    const gpu = await testGpu();
    const count = 33;
    const rng = createRng(1);
    const params = randomUniform(rng, count);
    const grads = randomUniform(rng, count);
    for (const config of [{ kind: 'momentum', lr: 0.1 }, { kind: 'adam', lr: 0.01 }] as OptimizerConfig[]) {
      const p = gpu.upload(params);
      const stale = new Float32Array(count).fill(5);
      const m = gpu.upload(stale);
      const v = gpu.upload(stale);
      const d = optimizerStep(gpu, { params: p, grads: gpu.upload(grads), m, v, count, config });
      gpu.submit([d]); // prepared with the uniforms of t = 1
      const ref = { params: params.slice(), m: stale.slice(), v: stale.slice() };
      optimizerStepRef(ref.params, grads, ref, config, 1);
      expectClose(await gpu.read(p, count), ref.params, TOL[config.kind].p, `${config.kind} params`);
      expectClose(await gpu.read(m, count), ref.m, TOL[config.kind].state, `${config.kind} m`);
    }
  });

  test('more than 65535 workgroups of parameters: the index folds into y', async () => {
    const gpu = await testGpu();
    const count = 256 * 65535 + 300;
    const rng = createRng(7);
    const params = randomUniform(rng, count);
    const grads = randomUniform(rng, count);
    const p = gpu.upload(params);
    const config: OptimizerConfig = { kind: 'sgd', lr: 0.5 };
    const d = optimizerStep(gpu, { params: p, grads: gpu.upload(grads), count, config });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    gpu.submit([d]);
    optimizerStepRef(params, grads, {}, config, 1);
    expectClose(await gpu.read(p, count), params, TOL.sgd.p, 'params');
  });

  test('misuse is refused: missing state, wrong kind for a prepared dispatch, t < 1', async () => {
    const gpu = await testGpu();
    const b = gpu.buffer(16);
    expect(() => optimizerStep(gpu, { params: b, grads: b, count: 4, config: { kind: 'adam', lr: 1 } })).toThrow(/needs state buffer m/);
    const d = optimizerStep(gpu, { params: b, grads: gpu.buffer(16), count: 4, config: { kind: 'sgd', lr: 1 } });
    expect(() => setOptimizerStep(gpu, d, { kind: 'momentum', lr: 1 }, 2)).toThrow(/cannot run/);
    expect(() => setOptimizerStep(gpu, d, { kind: 'sgd', lr: 1 }, 0)).toThrow(/t must be/);
  });
});
