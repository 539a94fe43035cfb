// Pipeline stages on the webgpu backend (the layer executor on a stage's range) in real Chromium:
// the shared stage suite (models cut into P stages and chained over M micro-batches give the whole
// model's gradient), a GPU stage feeding a CPU stage, and a stage allocating only its own layers.
import { afterAll, describe, expect, test } from 'vitest';
import { LayerExecutor } from '../client/nn/layer-executor.ts';
import { cpuStageBackend, ExecutorStage, type StageBackend } from '../client/worker/stage-backend.ts';
import { describeModel, initModelParams } from '../shared/layers/sequence.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { partitionLayers } from '../shared/stage.ts';
import { testGpu } from './helpers/gpu.ts';
import { batchOf, chainRound, referenceGradients, relativeError, STAGE_BATCH, STAGE_MODELS } from './helpers/stage-chain.ts';
import { stageBackendSuite, stagesOf, type MakeStage } from './helpers/stage-suite.ts';

const TOL = 1e-4;

const made: StageBackend[] = [];
afterAll(() => made.splice(0).forEach((s) => s.dispose()));

const makeGpu: MakeStage = async (model, plan, maxMicroBatch, maxMicroBatches) => {
  const gpu = await testGpu();
  const stage = new ExecutorStage(plan, new LayerExecutor(gpu, model, { first: plan.firstLayer, end: plan.endLayer, maxBatch: maxMicroBatch, maxMicroBatches }));
  made.push(stage);
  return stage;
};

stageBackendSuite('webgpu', makeGpu, TOL);

describe('webgpu stages with cpu stages', () => {
  test.for(STAGE_MODELS)('$name: a GPU first stage feeding a CPU last stage gives the same gradient', async ({ model }) => {
    const params = initModelParams(model, 5);
    const { x, labels } = batchOf(model, 9);
    const [plan0, plan1] = partitionLayers(model, 2);
    const [gpuFirst] = await stagesOf(makeGpu, model, 2, params, 7, 2);
    const cpuLast = cpuStageBackend({ model, plan: plan1, maxMicroBatch: 7, maxMicroBatches: 2 });
    cpuLast.setParams(params.slice(plan1.paramOffset, plan1.paramOffset + plan1.paramCount));
    expect(gpuFirst.plan).toEqual(plan0);
    const round = await chainRound([gpuFirst, cpuLast], x, labels, [7, 6]);
    const ref = referenceGradients(model, params, x, labels, STAGE_BATCH);
    expect(relativeError(round.grads, ref.grads)).toBeLessThanOrEqual(TOL);
  });
});

describe('webgpu stage memory: a stage allocates only its own layers', () => {
  test.for([
    // The first layer of [784, 128, 64, 10] is 92 % of the model: no cut into whole layers can
    // keep both stages under 0.6 of it, so only the exact slices are checked there.
    { widths: [784, 128, 64, 10], underShare: null },
    { widths: [784, 64, 256, 256, 10], underShare: 0.6 },
  ])('$widths in 2 stages', async ({ widths, underShare }) => {
    const model = describeModel(mlpLayers(widths, 'relu'), [widths[0]]);
    const modelBytes = model.paramCount * 4;
    const stages = (await stagesOf(makeGpu, model, 2, initModelParams(model, 1), 32, 4)) as ExecutorStage[];
    for (const s of stages) {
      const exec = s.executor as LayerExecutor;
      const tensors = model.layers.slice(s.plan.firstLayer, s.plan.endLayer).flatMap((l) => l.params);
      // The measured buffer: the stage's own tensors, each padded to 64 floats and no more.
      expect(s.parameterBytes).toBe(exec.params.size);
      expect(s.parameterBytes).toBe(tensors.reduce((n, t) => n + Math.ceil(t.size / 64) * 64, 0) * 4);
      expect(s.allocatedBytes).toBeGreaterThan(2 * s.parameterBytes);
      if (underShare !== null) expect(s.parameterBytes).toBeLessThanOrEqual(underShare * modelBytes);
    }
    // The activation stash grows with the micro-batches a round uses, not with maxMicroBatches.
    const first = stages[0];
    const x = new Float32Array(32 * widths[0]);
    const forwardAll = async (n: number) => {
      first.begin(Array(n).fill(32));
      for (let mb = 0; mb < n; mb++) await first.forward(mb, x);
    };
    const unused = first.allocatedBytes;
    await forwardAll(2);
    const two = first.allocatedBytes;
    await forwardAll(4);
    expect(two - unused).toBeGreaterThan(2 * 32 * widths[0] * 4);
    expect(first.allocatedBytes - two).toBe(two - unused);
    const together = stages[0].parameterBytes + stages[1].parameterBytes;
    expect(together).toBeGreaterThanOrEqual(modelBytes);
    expect(together).toBeLessThan(modelBytes + 64 * 4 * 2 * (widths.length - 1));
  });
});
