// Local mode on the CPU backend (client/worker/task-local.ts over LayerCpuBackend.innerStep): H
// inner steps give the pseudo-gradient of a plain loop (a fresh executor's gradient, then the
// optimizer's reference step on a copy of the parameters), on an MLP, a small CNN and a tiny
// transformer; the inner optimizer's state carries over between rounds until resetOptimizer();
// and a task of the wrong size is refused before any step.
import { describe, expect, test } from 'vitest';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { taskInnerSteps } from '../client/worker/task-local.ts';
import { CpuLayerExecutor } from '../shared/cpu/layer-executor.ts';
import type { ModelDescription } from '../shared/layers/sequence.ts';
import { optimizerStepRef, type OptimizerConfig } from '../shared/reference/optimizer.ts';
import { expectClose } from './helpers/check-op.ts';
import { CNN_CASE, MLP_CASE, modelOf, sourceOf, startParams, taskIndices, TRANSFORMER_CASE, type LocalCase } from './helpers/local-cases.ts';

const ADAMW: OptimizerConfig = { kind: 'adamw', lr: 0.01, weightDecay: 0.1 };
const always = () => true;

interface RefState {
  m: Float32Array;
  v: Float32Array;
  t: number;
}

const freshState = (model: ModelDescription): RefState => ({ m: new Float32Array(model.paramCount), v: new Float32Array(model.paramCount), t: 0 });

/** The plain loop: per step a fresh executor's gradient at the current parameters, then the reference update of a copy. */
async function referenceSteps(c: LocalCase, start: Float32Array, indices: Uint32Array, steps: number, batch: number, opt: OptimizerConfig, state: RefState) {
  const model = modelOf(c);
  const params = start.slice();
  let lossSum = 0;
  for (let s = 0; s < steps; s++) {
    const exec = new CpuLayerExecutor(model, { maxBatch: batch });
    exec.setParams(params);
    const { x, labels } = await sourceOf(c).batch(indices.subarray(s * batch, (s + 1) * batch));
    const { loss, grads } = await exec.computeGradients(x, labels, batch);
    optimizerStepRef(params, grads, state, opt, ++state.t);
    lossSum += loss;
  }
  return { loss: lossSum / steps, pseudo: start.map((p, i) => p - params[i]) };
}

// The same kernels in the same order on both sides: only the subtraction start − end may round differently.
const TOL = { atol: 1e-7, rtol: 1e-6 };

describe('taskInnerSteps on the CPU backend equals the plain loop', () => {
  test.for([
    { c: MLP_CASE, steps: 3, batch: 4 },
    { c: CNN_CASE, steps: 3, batch: 2 },
    { c: TRANSFORMER_CASE, steps: 3, batch: 2 },
  ])('$c.name: H=$steps AdamW on batches of $batch', async ({ c, steps, batch }) => {
    const model = modelOf(c);
    const start = startParams(model, 3);
    const indices = taskIndices(steps * batch, 9);
    const backend = new LayerCpuBackend(model, batch);
    const got = await taskInnerSteps(backend, start, sourceOf(c), indices, steps, batch, ADAMW, always);
    const want = await referenceSteps(c, start, indices, steps, batch, ADAMW, freshState(model));
    expect(got).not.toBeNull();
    expectClose(got!.pseudo, want.pseudo, TOL, 'pseudo-gradient');
    expect(got!.loss).toBeCloseTo(want.loss, 6);
    // The steps moved the parameters by something like lr per step, and start was not touched.
    expect(Math.max(...got!.pseudo.map(Math.abs))).toBeGreaterThan(ADAMW.lr);
    expect(start).toEqual(startParams(model, 3));
  });
});

describe('local mode: SGD, optimizer state across rounds, reset', () => {
  test('one SGD step of lr η gives pseudo = η · gradient', async () => {
    const c = CNN_CASE;
    const model = modelOf(c);
    const start = startParams(model, 4);
    const indices = taskIndices(3, 2);
    const lr = 0.05;
    const backend = new LayerCpuBackend(model, 3);
    backend.setParams(start);
    const { x, labels } = await sourceOf(c).batch(indices);
    const grads = (await backend.gradients(x, labels, 3)).grads.slice();
    const got = await taskInnerSteps(backend, start, sourceOf(c), indices, 1, 3, { kind: 'sgd', lr }, always);
    // start − (start − η·g) loses the bits of start below η·g's: an ulp of the parameter.
    expectClose(
      got!.pseudo,
      grads.map((g) => lr * g),
      { atol: 1e-7, rtol: 1e-5 },
      'pseudo-gradient',
    );
  });

  test('AdamW state and t carry over to the next round; resetOptimizer() starts afresh', async () => {
    const c = TRANSFORMER_CASE;
    const model = modelOf(c);
    const steps = 2;
    const batch = 2;
    const start1 = startParams(model, 6);
    const idx1 = taskIndices(steps * batch, 1);
    const idx2 = idx1.map((i) => i + steps * batch);
    const backend = new LayerCpuBackend(model, batch);
    const state = freshState(model);

    const r1 = await taskInnerSteps(backend, start1, sourceOf(c), idx1, steps, batch, ADAMW, always);
    await referenceSteps(c, start1, idx1, steps, batch, ADAMW, state);
    // The next round starts from the outer step's parameters (here: half the pseudo-gradient applied).
    const start2 = start1.map((p, i) => p - 0.5 * r1!.pseudo[i]);
    const r2 = await taskInnerSteps(backend, start2, sourceOf(c), idx2, steps, batch, ADAMW, always);
    const carried = await referenceSteps(c, start2, idx2, steps, batch, ADAMW, state);
    expect(state.t).toBe(2 * steps);
    expectClose(r2!.pseudo, carried.pseudo, TOL, 'round 2 with the state of round 1');

    const fresh = await referenceSteps(c, start2, idx2, steps, batch, ADAMW, freshState(model));
    const gap = Math.max(...r2!.pseudo.map((p, i) => Math.abs(p - fresh.pseudo[i])));
    expect(gap, 'round 2 must differ from a fresh optimizer').toBeGreaterThan(1e-3);

    backend.resetOptimizer();
    const again = await taskInnerSteps(backend, start2, sourceOf(c), idx2, steps, batch, ADAMW, always);
    expectClose(again!.pseudo, fresh.pseudo, TOL, 'round 2 after resetOptimizer()');
  });

  test('a step of another optimizer kind starts its state afresh', async () => {
    const c = MLP_CASE;
    const model = modelOf(c);
    const start = startParams(model, 8);
    const idx = taskIndices(4, 3);
    const momentum: OptimizerConfig = { kind: 'momentum', lr: 0.1 };
    const backend = new LayerCpuBackend(model, 2);
    await taskInnerSteps(backend, start, sourceOf(c), idx, 2, 2, ADAMW, always);
    const got = await taskInnerSteps(backend, start, sourceOf(c), idx, 2, 2, momentum, always);
    const want = await referenceSteps(c, start, idx, 2, 2, momentum, freshState(model));
    expectClose(got!.pseudo, want.pseudo, TOL, 'momentum after AdamW');
  });
});

describe('taskInnerSteps refuses bad sizes and stops when no longer wanted', () => {
  const c = MLP_CASE;
  const model = modelOf(c);
  const start = startParams(model, 1);

  test('indices that are not steps × batch, a batch over the backend maximum, zero steps', async () => {
    const backend = new LayerCpuBackend(model, 4);
    const src = sourceOf(c);
    await expect(taskInnerSteps(backend, start, src, taskIndices(7, 1), 2, 4, ADAMW, always)).rejects.toThrow(/7 examples for 2 steps of 4; expected 8/);
    await expect(taskInnerSteps(backend, start, src, taskIndices(10, 1), 2, 5, ADAMW, always)).rejects.toThrow(/batch of 5 examples exceeds the backend's 4/);
    await expect(taskInnerSteps(backend, start, src, taskIndices(0, 1), 0, 4, ADAMW, always)).rejects.toThrow(/steps must be a positive integer/);
    await expect(taskInnerSteps(backend, start, src, taskIndices(8, 1), 2, 4, ADAMW, always)).resolves.not.toBeNull();
  });

  test('null once stillWanted turns false, after the steps taken so far', async () => {
    const backend = new LayerCpuBackend(model, 2);
    let asked = 0;
    const r = await taskInnerSteps(backend, start, sourceOf(c), taskIndices(6, 2), 3, 2, ADAMW, () => ++asked < 2);
    expect(r).toBeNull();
    expect(asked).toBe(2);
  });
});
