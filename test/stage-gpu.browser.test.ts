// Pipeline stages on the webgpu backend (client/nn/stage-gpu.ts) in real Chromium: a 4-layer MLP
// cut into P stages, chained by hand over M micro-batches, gives the whole model's loss and
// gradient on the whole batch (mlpGradientsRef); a stage allocates only its own parameters.
import { afterAll, describe, expect, test } from 'vitest';
import { CpuStage } from '../client/cpu/stage-cpu.ts';
import { GpuStage } from '../client/nn/stage-gpu.ts';
import { initMlpParams, mlpLayout, type MlpSpec } from '../shared/model.ts';
import { mlpGradientsRef } from '../shared/reference/mlp.ts';
import { microBatchSizes, partitionLayers } from '../shared/stage.ts';
import { testGpu } from './helpers/gpu.ts';
import { batchOf, chainRound, relativeError, STAGE_BATCH, STAGE_CASES } from './helpers/stage-chain.ts';

const TOL = 1e-4;
const BATCH = STAGE_BATCH;

const made: GpuStage[] = [];
afterAll(() => made.splice(0).forEach((s) => s.dispose()));

async function stagesOf(spec: MlpSpec, stages: number, params: Float32Array, maxMicroBatch: number, maxMicroBatches: number): Promise<GpuStage[]> {
  const gpu = await testGpu();
  return partitionLayers(spec, stages).map((plan) => {
    const stage = new GpuStage(gpu, plan, maxMicroBatch, maxMicroBatches);
    made.push(stage);
    stage.setParams(params.slice(plan.paramOffset, plan.paramOffset + plan.paramCount));
    return stage;
  });
}

describe('GpuStage chained over micro-batches equals the whole model on the whole batch', () => {
  test.for(STAGE_CASES)('[33, 17, 29, 9, 5] $activation, P=$stages, M=$microBatches', async ({ activation, stages, microBatches }) => {
    const spec: MlpSpec = { layers: [33, 17, 29, 9, 5], activation };
    const params = initMlpParams(spec, 7 + stages);
    const { x, labels } = batchOf(spec, 100 * stages + microBatches);
    const ref = mlpGradientsRef(spec, params, x, labels, BATCH);
    const sizes = microBatchSizes(BATCH, microBatches);
    const pipeline = await stagesOf(spec, stages, params, Math.max(...sizes), microBatches);

    const gpipe = await chainRound(pipeline, x, labels, sizes, 'reverse');
    expect(relativeError(gpipe.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(gpipe.loss - ref.loss)).toBeLessThanOrEqual(TOL * Math.abs(ref.loss));

    // Micro-batches coming back in forward order give the same gradient.
    const inOrder = await chainRound(pipeline, x, labels, sizes, 'forward');
    expect(relativeError(inOrder.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(inOrder.loss - ref.loss)).toBeLessThanOrEqual(TOL * Math.abs(ref.loss));
    pipeline.forEach((s) => s.dispose());
  });
});

describe('GpuStage rounds', () => {
  const spec: MlpSpec = { layers: [33, 17, 29, 9, 5], activation: 'gelu' };

  test("begin zeroes the gradient: two rounds give the second round's gradient only", async () => {
    const params = initMlpParams(spec, 3);
    const first = batchOf(spec, 1);
    const second = batchOf(spec, 2);
    const pipeline = await stagesOf(spec, 3, params, 7, 2);
    await chainRound(pipeline, first.x, first.labels, [7, 6]);
    const round2 = await chainRound(pipeline, second.x, second.labels, [6, 7]);
    const ref = mlpGradientsRef(spec, params, second.x, second.labels, BATCH);
    expect(relativeError(round2.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    expect(relativeError(mlpGradientsRef(spec, params, first.x, first.labels, BATCH).grads, ref.grads)).toBeGreaterThan(0.01);
  });

  test('mixes with cpu stages: a GPU first stage feeding a CPU last stage gives the same gradient', async () => {
    const params = initMlpParams(spec, 5);
    const { x, labels } = batchOf(spec, 9);
    const [plan0, plan1] = partitionLayers(spec, 2);
    const [gpuFirst] = await stagesOf(spec, 2, params, 7, 2);
    const cpuLast = new CpuStage(plan1, 7);
    cpuLast.setParams(params.slice(plan1.paramOffset, plan1.paramOffset + plan1.paramCount));
    expect(gpuFirst.plan).toEqual(plan0);
    const round = await chainRound([gpuFirst, cpuLast], x, labels, [7, 6]);
    const ref = mlpGradientsRef(spec, params, x, labels, BATCH);
    expect(relativeError(round.grads, ref.grads)).toBeLessThanOrEqual(TOL);
  });

  test('refuses misuse with a message that says what was expected', async () => {
    const [s0, s1] = await stagesOf(spec, 2, initMlpParams(spec, 1), 4, 2);
    expect(() => s0.begin([1, 1, 1])).toThrow(/1 to maxMicroBatches 2 micro-batches, got 3/);
    expect(() => s0.begin([5])).toThrow(/micro-batch 0 has 5 rows.*maxMicroBatch 4/);
    s0.begin([2, 3]);
    s1.begin([2, 3]);
    await expect(s0.forward(0, new Float32Array(3 * 33))).rejects.toThrow(/expected 2 rows × 33/);
    await expect(s0.backward(1, new Float32Array(3 * s0.plan.layers.at(-1)!))).rejects.toThrow(/has not been forwarded/);
    await expect(s1.forward(0, new Float32Array(2 * s1.plan.layers[0]))).rejects.toThrow(/is the last; use forwardBackwardLast/);
    const y = await s0.forward(0, new Float32Array(2 * 33));
    await expect(s1.forwardBackwardLast(0, y, [0, 5])).rejects.toThrow(/label 1 is 5/);
    s0.dispose();
    expect(() => s0.begin([1])).toThrow(/after dispose/);
  });
});

describe('GpuStage memory: a stage allocates only its own layers', () => {
  test.for([
    // The first layer of [784, 128, 64, 10] is 92 % of the model: no cut into whole layers can
    // keep both stages under 0.6 of it, so only the exact slices are checked there.
    { layers: [784, 128, 64, 10], underShare: null },
    { layers: [784, 64, 256, 256, 10], underShare: 0.6 },
  ])('$layers in 2 stages', async ({ layers, underShare }) => {
    const gpu = await testGpu();
    const spec: MlpSpec = { layers, activation: 'relu' };
    const modelBytes = mlpLayout(spec).count * 4;
    const stages = partitionLayers(spec, 2).map((plan) => new GpuStage(gpu, plan, 32, 4));
    made.push(...stages);
    for (const s of stages) {
      // The measured buffer: the stage's own tensors, each padded to 64 floats and no more.
      expect(s.parameterBytes).toBe(s.params.size);
      expect(s.parameterBytes).toBe(mlpLayout({ layers: s.plan.layers, activation: 'relu' }, 64).count * 4);
      expect(s.parameterBytes).toBeLessThan(s.plan.paramCount * 4 + 64 * 4 * s.plan.layers.length * 2);
      expect(s.allocatedBytes).toBeGreaterThan(2 * s.parameterBytes);
      if (underShare !== null) expect(s.parameterBytes).toBeLessThanOrEqual(underShare * modelBytes);
    }
    // The activation stash grows with the micro-batches a round uses, not with maxMicroBatches.
    const unused = stages[0].allocatedBytes;
    stages[0].begin([32, 32]);
    const two = stages[0].allocatedBytes;
    stages[0].begin([32, 32, 32, 32]);
    expect(two - unused).toBeGreaterThan(2 * 32 * layers[0] * 4);
    expect(stages[0].allocatedBytes - two).toBe(two - unused);
    const together = stages[0].parameterBytes + stages[1].parameterBytes;
    expect(together).toBeGreaterThanOrEqual(modelBytes);
    expect(together).toBeLessThan(modelBytes + 64 * 4 * 2 * (layers.length - 1));
    stages.forEach((s) => s.dispose());
  });
});
