// The stage backend suite, run once per backend (test/stage-cpu.test.ts, test/stage-gpu.browser.test.ts):
// a model cut into P stages and chained by hand over M micro-batches gives the whole model's loss
// and gradient on the whole batch; rounds start from zero; new parameters take effect; misuse is
// refused with a message that says what was expected.
import { describe, expect, test } from 'vitest';
import type { StageBackend } from '../../client/worker/stage-backend.ts';
import { initModelParams, type ModelDescription } from '../../shared/layers/sequence.ts';
import { microBatchSizes, partitionLayers, type StagePlan } from '../../shared/stage.ts';
import { batchOf, chainRound, referenceGradients, relativeError, STAGE_BATCH, STAGE_CASES, STAGE_MODELS } from './stage-chain.ts';

export type MakeStage = (model: ModelDescription, plan: StagePlan, maxMicroBatch: number, maxMicroBatches: number) => Promise<StageBackend>;

/** The model cut into `stages`, each stage holding its slice of `params`. */
export async function stagesOf(make: MakeStage, model: ModelDescription, stages: number, params: Float32Array, maxMicroBatch: number, maxMicroBatches = 4): Promise<StageBackend[]> {
  return Promise.all(
    partitionLayers(model, stages).map(async (plan) => {
      const stage = await make(model, plan, maxMicroBatch, maxMicroBatches);
      stage.setParams(params.slice(plan.paramOffset, plan.paramOffset + plan.paramCount));
      return stage;
    }),
  );
}

export function stageBackendSuite(backend: string, make: MakeStage, tol: number): void {
  const BATCH = STAGE_BATCH;

  describe(`${backend} stages chained over micro-batches equal the whole model on the whole batch`, () => {
    test.for(STAGE_CASES)('$name, P=$stages, M=$microBatches', async ({ model, stages, microBatches }) => {
      const params = initModelParams(model, 7 + stages);
      const { x, labels } = batchOf(model, 100 * stages + microBatches);
      const ref = referenceGradients(model, params, x, labels, BATCH);
      const sizes = microBatchSizes(BATCH, microBatches);
      expect(sizes).toHaveLength(microBatches);
      const pipeline = await stagesOf(make, model, stages, params, Math.max(...sizes), microBatches);

      const gpipe = await chainRound(pipeline, x, labels, sizes, 'reverse');
      expect(relativeError(gpipe.grads, ref.grads)).toBeLessThanOrEqual(tol);
      expect(Math.abs(gpipe.loss - ref.loss)).toBeLessThanOrEqual(tol * Math.abs(ref.loss));

      // Micro-batches coming back in forward order give the same gradient.
      const inOrder = await chainRound(pipeline, x, labels, sizes, 'forward');
      expect(relativeError(inOrder.grads, ref.grads)).toBeLessThanOrEqual(tol);
      expect(Math.abs(inOrder.loss - ref.loss)).toBeLessThanOrEqual(tol * Math.abs(ref.loss));
      pipeline.forEach((s) => s.dispose());
    });
  });

  describe(`${backend} stage rounds`, () => {
    const { model } = STAGE_MODELS[1];

    test("begin zeroes the gradient: two rounds give the second round's gradient only", async () => {
      const params = initModelParams(model, 3);
      const first = batchOf(model, 1);
      const second = batchOf(model, 2);
      const pipeline = await stagesOf(make, model, 3, params, 7, 2);
      await chainRound(pipeline, first.x, first.labels, [7, 6]);
      const round2 = await chainRound(pipeline, second.x, second.labels, [6, 7]);
      const ref = referenceGradients(model, params, second.x, second.labels, BATCH);
      expect(relativeError(round2.grads, ref.grads)).toBeLessThanOrEqual(tol);
      // The two batches' gradients differ, so a leftover first round would show.
      expect(relativeError(referenceGradients(model, params, first.x, first.labels, BATCH).grads, ref.grads)).toBeGreaterThan(0.01);
      pipeline.forEach((s) => s.dispose());
    });

    test('new parameters take effect in the next round', async () => {
      const pipeline = await stagesOf(make, model, 2, initModelParams(model, 3), BATCH);
      const { x, labels } = batchOf(model, 5);
      await chainRound(pipeline, x, labels, [BATCH]);
      const params = initModelParams(model, 4);
      for (const s of pipeline) s.setParams(params.slice(s.plan.paramOffset, s.plan.paramOffset + s.plan.paramCount));
      const round = await chainRound(pipeline, x, labels, [BATCH]);
      expect(relativeError(round.grads, referenceGradients(model, params, x, labels, BATCH).grads)).toBeLessThanOrEqual(tol);
      pipeline.forEach((s) => s.dispose());
    });

    test('refuses misuse with a message that says what was expected', async () => {
      const [s0, s1] = await stagesOf(make, model, 2, initModelParams(model, 1), 4, 2);
      const width = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
      expect(() => s0.begin([1, 1, 1])).toThrow(/3 micro-batches, this stage holds at most 2/);
      expect(() => s0.begin([5])).toThrow(/micro-batch 0 has 5 rows.*maxMicroBatch 4/);
      expect(() => s0.setParams(new Float32Array(3))).toThrow(/expected \d+ parameters, got 3/);
      s0.begin([2, 3]);
      s1.begin([2, 3]);
      await expect(s0.forward(0, new Float32Array(3 * 33))).rejects.toThrow(/expected 2 × 33/);
      await expect(s0.forward(2, new Float32Array(2 * 33))).rejects.toThrow(/micro-batch 2 is not one of this round's 2/);
      await expect(s0.backward(1, new Float32Array(3 * width(s0.plan.outShape)))).rejects.toThrow(/has not been forwarded/);
      await expect(s1.forward(0, new Float32Array(2 * width(s1.plan.inShape)))).rejects.toThrow(/is the last; use forwardBackwardLast/);
      await expect(s0.forwardBackwardLast(0, new Float32Array(2 * 33), [0, 1])).rejects.toThrow(/is not the last; use forward/);
      const y = await s0.forward(0, new Float32Array(2 * 33));
      await expect(s0.forward(0, new Float32Array(2 * 33))).rejects.toThrow(/already been forwarded/);
      await expect(s1.forwardBackwardLast(0, y, [0, 5])).rejects.toThrow(/label 1 is 5, expected an integer in \[0, 5\)/);
      s0.dispose();
      s1.dispose();
      expect(() => s0.begin([1])).toThrow(/after dispose/);
    });
  });
}
