// Pipeline stages on the cpu backend (client/cpu/stage-cpu.ts): a 4-layer MLP cut into P stages,
// chained by hand over M micro-batches, gives the whole model's loss and gradient on the whole
// batch (mlpGradientsRef); plus partitionLayers' cuts and the stage's refusals of misuse.
import { describe, expect, test } from 'vitest';
import { CpuStage } from '../client/cpu/stage-cpu.ts';
import { initMlpParams, mlpLayout, type MlpSpec } from '../shared/model.ts';
import { mlpGradientsRef } from '../shared/reference/mlp.ts';
import { microBatchSizes, partitionLayers, StagePlanError, stageLayout, type StagePlan } from '../shared/stage.ts';
import { batchOf, chainRound, relativeError, STAGE_BATCH, STAGE_CASES } from './helpers/stage-chain.ts';

const TOL = 1e-5;
const BATCH = STAGE_BATCH;

function stagesOf(spec: MlpSpec, stages: number, params: Float32Array, maxMicroBatch: number): CpuStage[] {
  return partitionLayers(spec, stages).map((plan) => {
    const stage = new CpuStage(plan, maxMicroBatch);
    stage.setParams(params.slice(plan.paramOffset, plan.paramOffset + plan.paramCount));
    return stage;
  });
}

describe('CpuStage chained over micro-batches equals the whole model on the whole batch', () => {
  test.for(STAGE_CASES)('[33, 17, 29, 9, 5] $activation, P=$stages, M=$microBatches', async ({ activation, stages, microBatches }) => {
    const spec: MlpSpec = { layers: [33, 17, 29, 9, 5], activation };
    const params = initMlpParams(spec, 7 + stages);
    const { x, labels } = batchOf(spec, 100 * stages + microBatches);
    const ref = mlpGradientsRef(spec, params, x, labels, BATCH);
    const sizes = microBatchSizes(BATCH, microBatches);
    expect(sizes).toHaveLength(microBatches);
    const pipeline = stagesOf(spec, stages, params, Math.max(...sizes));

    const gpipe = await chainRound(pipeline, x, labels, sizes, 'reverse');
    expect(relativeError(gpipe.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(gpipe.loss - ref.loss)).toBeLessThanOrEqual(TOL * Math.abs(ref.loss));

    // Micro-batches coming back in forward order give the same gradient.
    const inOrder = await chainRound(pipeline, x, labels, sizes, 'forward');
    expect(relativeError(inOrder.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(inOrder.loss - ref.loss)).toBeLessThanOrEqual(TOL * Math.abs(ref.loss));
  });
});

describe('CpuStage rounds', () => {
  const spec: MlpSpec = { layers: [33, 17, 29, 9, 5], activation: 'gelu' };

  test('begin zeroes the gradient: two rounds give the second round\'s gradient only', async () => {
    const params = initMlpParams(spec, 3);
    const first = batchOf(spec, 1);
    const second = batchOf(spec, 2);
    const pipeline = stagesOf(spec, 3, params, 7);
    await chainRound(pipeline, first.x, first.labels, [7, 6]);
    const round2 = await chainRound(pipeline, second.x, second.labels, [6, 7]);
    const ref = mlpGradientsRef(spec, params, second.x, second.labels, BATCH);
    expect(relativeError(round2.grads, ref.grads)).toBeLessThanOrEqual(TOL);
    // The two batches' gradients differ, so a leftover first round would show.
    expect(relativeError(mlpGradientsRef(spec, params, first.x, first.labels, BATCH).grads, ref.grads)).toBeGreaterThan(0.01);
  });

  test('new parameters take effect in the next round', async () => {
    const pipeline = stagesOf(spec, 2, initMlpParams(spec, 3), BATCH);
    const { x, labels } = batchOf(spec, 5);
    await chainRound(pipeline, x, labels, [BATCH]);
    const params = initMlpParams(spec, 4);
    for (const s of pipeline) s.setParams(params.slice(s.plan.paramOffset, s.plan.paramOffset + s.plan.paramCount));
    const round = await chainRound(pipeline, x, labels, [BATCH]);
    expect(relativeError(round.grads, mlpGradientsRef(spec, params, x, labels, BATCH).grads)).toBeLessThanOrEqual(TOL);
  });

  test('a stage holds only its own parameters', () => {
    // [784, 128, 64, 10] cannot be cut under 0.6 a stage: its first layer alone is 92 % of it.
    for (const layers of [[784, 128, 64, 10], [784, 64, 256, 256, 10]]) {
      const big: MlpSpec = { layers, activation: 'relu' };
      const stages = partitionLayers(big, 2).map((plan) => new CpuStage(plan, 32));
      const modelBytes = mlpLayout(big).count * 4;
      for (const s of stages) {
        expect(s.parameterBytes).toBe(s.plan.paramCount * 4);
        expect(s.allocatedBytes).toBeGreaterThan(s.parameterBytes);
      }
      expect(stages[0].parameterBytes + stages[1].parameterBytes).toBe(modelBytes);
      if (layers.length === 5) for (const s of stages) expect(s.parameterBytes).toBeLessThanOrEqual(0.6 * modelBytes);
    }
  });

  test('refuses misuse with a message that says what was expected', async () => {
    const [s0, s1] = stagesOf(spec, 2, initMlpParams(spec, 1), 4);
    expect(() => s0.begin([5])).toThrow(/micro-batch 0 has 5 rows.*maxMicroBatch 4/);
    expect(() => s0.setParams(new Float32Array(3))).toThrow(/expected \d+ parameters, got 3/);
    s0.begin([2, 3]);
    s1.begin([2, 3]);
    await expect(s0.forward(0, new Float32Array(3 * 33))).rejects.toThrow(/expected 2 rows × 33/);
    await expect(s0.forward(2, new Float32Array(2 * 33))).rejects.toThrow(/micro-batch 2 is not one of this round's 2/);
    await expect(s0.backward(1, new Float32Array(3 * s0.plan.layers.at(-1)!))).rejects.toThrow(/has not been forwarded/);
    await expect(s1.forward(0, new Float32Array(2 * s1.plan.layers[0]))).rejects.toThrow(/is the last; use forwardBackwardLast/);
    await expect(s0.forwardBackwardLast(0, new Float32Array(2 * 33), [0, 1])).rejects.toThrow(/is not the last; use forward/);
    const y = await s0.forward(0, new Float32Array(2 * 33));
    await expect(s0.forward(0, new Float32Array(2 * 33))).rejects.toThrow(/already been forwarded/);
    await expect(s1.forwardBackwardLast(0, y, [0, 5])).rejects.toThrow(/label 1 is 5, expected an integer in \[0, 5\)/);
    s0.dispose();
    expect(() => s0.begin([1])).toThrow(/after dispose/);
  });
});

describe('partitionLayers', () => {
  const mnist: MlpSpec = { layers: [784, 128, 64, 10], activation: 'relu' };

  test('[784, 128, 64, 10] in 2 stages: the big first layer alone, then the other two', () => {
    const [a, b] = partitionLayers(mnist, 2);
    expect([a.firstLayer, a.endLayer, b.firstLayer, b.endLayer]).toEqual([0, 1, 1, 3]);
    expect(a.layers).toEqual([784, 128]);
    expect(b.layers).toEqual([128, 64, 10]);
    expect([a.first, a.last, b.first, b.last]).toEqual([true, false, false, true]);
  });

  test('more stages than dense layers is refused, saying why', () => {
    expect(() => partitionLayers(mnist, 4)).toThrow(StagePlanError);
    expect(() => partitionLayers(mnist, 4)).toThrow(/cannot cut 3 dense layer\(s\) into 4 stages/);
    expect(() => partitionLayers(mnist, 0)).toThrow(/positive integer/);
  });

  test.for([
    { layers: [784, 128, 64, 10], stages: 3 },
    { layers: [33, 17, 29, 9, 5], stages: 1 },
    { layers: [33, 17, 29, 9, 5], stages: 2 },
    { layers: [33, 17, 29, 9, 5], stages: 3 },
    { layers: [33, 17, 29, 9, 5], stages: 4 },
    { layers: [5, 300, 300, 300, 2], stages: 2 },
  ])('stage slices of $layers in $stages tile the parameter vector exactly', ({ layers, stages }) => {
    const spec: MlpSpec = { layers, activation: 'gelu' };
    const full = mlpLayout(spec);
    const plans: StagePlan[] = partitionLayers(spec, stages);
    expect(plans).toHaveLength(stages);
    let offset = 0;
    let layer = 0;
    const names: string[] = [];
    for (const p of plans) {
      expect(p.paramOffset).toBe(offset);
      expect(p.firstLayer).toBe(layer);
      expect(p.endLayer).toBeGreaterThan(p.firstLayer);
      const local = stageLayout(p, spec);
      expect(local.count).toBe(p.paramCount);
      for (const t of local.tensors) {
        const whole = full.tensors.find((w) => w.name === t.name)!;
        expect(t.offset + p.paramOffset).toBe(whole.offset);
        names.push(t.name);
      }
      offset += p.paramCount;
      layer = p.endLayer;
    }
    expect(offset).toBe(full.count);
    expect(layer).toBe(layers.length - 1);
    expect(names).toEqual(full.tensors.map((t) => t.name));
  });
});
