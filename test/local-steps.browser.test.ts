// Local mode on the WebGPU backend in real Chromium: taskInnerSteps on LayerGpuBackend (the
// optimizer kernel in place on the executor's parameters) against the same on the CPU backend
// (checked against a plain loop in local-steps.test.ts), on a tiny CNN and a tiny transformer
// (every layer kind between them): H=3 AdamW, the inner state carried into a second round of
// another batch size (another executor, the same state), resetOptimizer(), and inner steps that
// hop between executors within a round. Shapes are tiny: SwiftShader runs every kernel on the CPU.
import { describe, expect, test } from 'vitest';
import { LayerCpuBackend, type GradientBackend } from '../client/worker/backend.ts';
import { taskInnerSteps, type LocalResult } from '../client/worker/task-local.ts';
import { LayerGpuBackend } from '../client/worker/webgpu-backend.ts';
import type { ModelDescription } from '../shared/layers/sequence.ts';
import type { OptimizerConfig } from '../shared/reference/optimizer.ts';
import { expectClose } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { CNN_CASE, modelOf, sourceOf, startParams, taskIndices, TRANSFORMER_CASE, type LocalCase } from './helpers/local-cases.ts';

const ADAMW: OptimizerConfig = { kind: 'adamw', lr: 0.01, weightDecay: 0.1 };

// Each Adam step moves a parameter by about lr whatever its gradient's scale, so the pseudo-gradient
// of H steps is O(H·lr) and a bug (a lost or reset state, a wrong t, a stale executor, the wrong
// examples) shows as an O(lr) difference. The gradients differ by float32 rounding (sums in another
// order, tanh-GELU and exp in WGSL: 1e-4 of a tensor's largest at worst, layer-executor tests);
// Adam turns a relative gradient error δ into about δ·lr. Measured on SwiftShader: at most 3e-5·lr.
// 1e-3·lr leaves 30× of room and is still 1000× below a bug.
const TOL = { atol: 1e-3 * ADAMW.lr, rtol: 0 };
const LOSS_RTOL = 1e-5;

/**
 * Parameters whose gradient is zero in exact arithmetic: an attention's key bias adds the same
 * q·b to each of a query's scores, which the softmax ignores. Both backends' gradients there are
 * rounding noise (checked below), which Adam normalises into steps of about lr of either sign, so
 * no two implementations agree on them (PyTorch on CPU and CUDA would not either).
 */
function keyBiases(model: ModelDescription): { name: string; from: number; to: number }[] {
  const out: { name: string; from: number; to: number }[] = [];
  for (const l of model.layers)
    for (const p of l.params) {
      if (!p.name.endsWith('in_proj_bias')) continue;
      const c = p.size / 3;
      out.push({ name: p.name, from: p.offset + c, to: p.offset + 2 * c });
    }
  return out;
}

/** Pseudo-gradients to TOL, each tensor named in a failure, key biases left out. */
function expectSamePseudo(model: ModelDescription, actual: LocalResult | null, expected: LocalResult | null, what: string): void {
  expect(actual, `${what}: WebGPU result`).not.toBeNull();
  expect(expected, `${what}: CPU result`).not.toBeNull();
  const a = actual!.pseudo.slice();
  const e = expected!.pseudo.slice();
  for (const k of keyBiases(model)) {
    a.fill(0, k.from, k.to);
    e.fill(0, k.from, k.to);
  }
  for (const l of model.layers)
    for (const p of l.params) expectClose(a.subarray(p.offset, p.offset + p.size), e.subarray(p.offset, p.offset + p.size), TOL, `${what}: pseudo-gradient of ${p.name}`);
  expect(Math.abs(actual!.loss - expected!.loss), `${what}: loss ${actual!.loss}, CPU ${expected!.loss}`).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(expected!.loss));
}

/** The key biases' gradient is noise next to the rest of the attention's: what lets the comparison leave them out. */
async function expectKeyBiasGradientsVanish(c: LocalCase, model: ModelDescription, start: Float32Array): Promise<void> {
  const cpu = new LayerCpuBackend(model, 2);
  cpu.setParams(start);
  const { x, labels } = await sourceOf(c).batch(taskIndices(2, 4));
  const { grads } = await cpu.gradients(x, labels, 2);
  for (const k of keyBiases(model)) {
    const weights = model.layers.flatMap((l) => l.params).find((p) => p.name === k.name.replace('in_proj_bias', 'in_proj_weight'))!;
    const scale = grads.subarray(weights.offset, weights.offset + weights.size).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const noise = grads.subarray(k.from, k.to).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(noise, `${k.name} key part: ${noise} against ${scale}`).toBeLessThan(1e-5 * scale);
  }
}

describe('taskInnerSteps on WebGPU matches the CPU backend', () => {
  test.for([CNN_CASE, TRANSFORMER_CASE])('$name: H=3 AdamW, a second round with the state carried, then a reset', async (c) => {
    const gpu = await testGpu();
    const model = modelOf(c);
    const start = startParams(model, 3);
    await expectKeyBiasGradientsVanish(c, model, start);
    const backends: GradientBackend[] = [new LayerGpuBackend(gpu, model, 3), new LayerCpuBackend(model, 3)];
    const src = sourceOf(c);
    const both = (from: Float32Array, indices: Uint32Array, steps: number, batch: number) =>
      Promise.all(backends.map((b) => taskInnerSteps(b, from, src, indices, steps, batch, ADAMW, () => true)));
    try {
      const [g1, c1] = await both(start, taskIndices(6, 9), 3, 2);
      expectSamePseudo(model, g1, c1, 'round 1');
      // The outer step moves the run's parameters; the next task is of 3 examples a step (a new executor on WebGPU), t = 4, 5.
      const start2 = start.map((p, i) => p - 0.7 * c1!.pseudo[i]);
      const idx2 = taskIndices(6, 10).map((i) => i + 6);
      const [g2, c2] = await both(start2, idx2, 2, 3);
      expectSamePseudo(model, g2, c2, 'round 2, state carried');
      for (const b of backends) b.resetOptimizer();
      const [g3, c3] = await both(start2, idx2, 2, 3);
      expectSamePseudo(model, g3, c3, 'round 2 again after resetOptimizer()');
      // Guard: the carried state made a difference the comparison above would have seen.
      const gap = c2!.pseudo.reduce((m, v, i) => Math.max(m, Math.abs(v - c3!.pseudo[i])), 0);
      expect(gap).toBeGreaterThan(100 * TOL.atol);
    } finally {
      for (const b of backends) b.dispose();
    }
  });

  test('CNN: inner steps of four batch sizes within a round hand the parameters from executor to executor', async () => {
    const gpu = await testGpu();
    const c = CNN_CASE;
    const model = modelOf(c);
    const start = startParams(model, 7);
    const idx = taskIndices(14, 5);
    // Executors are kept for the three batch sizes used last: the fourth size evicts one, and
    // going back to 1 evicts another while the live executor (which holds the stepped parameters) stays.
    const sizes = [1, 2, 3, 4, 1, 3];
    const backends = [new LayerGpuBackend(gpu, model, 4), new LayerCpuBackend(model, 4)];
    try {
      const ends: Float32Array[] = [];
      for (const b of backends) {
        b.setParams(start);
        let at = 0;
        for (const n of sizes) {
          const { x, labels } = await sourceOf(c).batch(idx.subarray(at, at + n));
          await b.innerStep(x, labels, n, ADAMW);
          at += n;
        }
        ends.push(await b.readParams());
      }
      expectClose(ends[0], ends[1], TOL, 'parameters after six inner steps');
      expect(ends[0]).not.toEqual(start);
      // A gradient task on the stepped parameters uses them too, on an executor that had none of them.
      const { x, labels } = await sourceOf(c).batch(idx.subarray(0, 2));
      const [g, e] = await Promise.all(backends.map(async (b) => (await b.gradients(x, labels, 2)).grads.slice()));
      const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(g, e, { atol: 1e-4 * scale, rtol: 0 }, 'gradient after inner steps');
    } finally {
      for (const b of backends) b.dispose();
    }
  });
});
