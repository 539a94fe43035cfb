// Pipeline stages on the cpu backend (the CPU layer executor on a stage's range): the shared
// stage suite (models cut into P stages and chained over M micro-batches give the whole model's
// gradient), plus partitionLayers' cuts (at layer boundaries, by cost) and what a stage holds.
import { describe, expect, test } from 'vitest';
import { cpuStageBackend } from '../client/worker/stage-backend.ts';
import { describeModel } from '../shared/layers/sequence.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { layerCost, partitionLayers, StagePlanError, type StagePlan } from '../shared/stage.ts';
import { STAGE_MODELS } from './helpers/stage-chain.ts';
import { stageBackendSuite, stagesOf, type MakeStage } from './helpers/stage-suite.ts';

const makeCpu: MakeStage = async (model, plan, maxMicroBatch, maxMicroBatches) => cpuStageBackend({ model, plan, maxMicroBatch, maxMicroBatches });

stageBackendSuite('cpu', makeCpu, 1e-5);

const mlp = (widths: number[], activation: 'relu' | 'gelu' = 'relu') => describeModel(mlpLayers(widths, activation), [widths[0]]);

describe('cpu stage memory', () => {
  test('a stage holds only its own parameters', async () => {
    // [784, 128, 64, 10] cannot be cut under 0.6 a stage: its first layer alone is 92 % of it.
    for (const widths of [[784, 128, 64, 10], [784, 64, 256, 256, 10]]) {
      const model = mlp(widths);
      const stages = await stagesOf(makeCpu, model, 2, new Float32Array(model.paramCount), 32);
      const modelBytes = model.paramCount * 4;
      for (const s of stages) {
        expect(s.parameterBytes).toBe(s.plan.paramCount * 4);
        expect(s.allocatedBytes).toBeGreaterThan(s.parameterBytes);
      }
      expect(stages[0].parameterBytes + stages[1].parameterBytes).toBe(modelBytes);
      if (widths.length === 5) for (const s of stages) expect(s.parameterBytes).toBeLessThanOrEqual(0.6 * modelBytes);
    }
  });
});

describe('partitionLayers', () => {
  const mnist = mlp([784, 128, 64, 10]);

  test('[784, 128, 64, 10] in 2 stages: the big first dense layer alone, then the rest', () => {
    const [a, b] = partitionLayers(mnist, 2);
    expect([a.firstLayer, a.endLayer, b.firstLayer, b.endLayer]).toEqual([0, 1, 1, 5]);
    expect(a.inShape).toEqual([784]);
    expect(a.outShape).toEqual([128]);
    expect(b.inShape).toEqual([128]);
    expect(b.outShape).toEqual([10]);
    expect([a.first, a.last, b.first, b.last]).toEqual([true, false, false, true]);
  });

  test('more stages than layers is refused, saying why', () => {
    expect(() => partitionLayers(mnist, 6)).toThrow(StagePlanError);
    expect(() => partitionLayers(mnist, 6)).toThrow(/cannot cut 5 layer\(s\) into 6 stages/);
    expect(() => partitionLayers(mnist, 0)).toThrow(/positive integer/);
  });

  test('the CNN is cut where the costs balance, and relays carry the shape at the cut', () => {
    const cnn = describeModel(
      [{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'conv2d', out: 16, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }],
      [1, 28, 28],
    );
    const [a, b] = partitionLayers(cnn, 2);
    const cost = (p: StagePlan) => cnn.layers.slice(p.firstLayer, p.endLayer).reduce((n, l) => n + layerCost(l), 0);
    // The second convolution costs more than the first: the cut falls after the first pooling.
    expect(a.endLayer).toBe(3);
    expect(a.outShape).toEqual([8, 12, 12]);
    expect(b.inShape).toEqual([8, 12, 12]);
    // No other single cut has a smaller largest stage.
    for (let cut = 1; cut < cnn.layers.length; cut++) {
      const [x, y] = [cnn.layers.slice(0, cut), cnn.layers.slice(cut)].map((ls) => ls.reduce((n, l) => n + layerCost(l), 0));
      expect(Math.max(cost(a), cost(b))).toBeLessThanOrEqual(Math.max(x, y));
    }
  });

  test.for([
    ...STAGE_MODELS.flatMap(({ name, model }) => [1, 2, 3, 4].map((stages) => ({ name, model, stages }))),
    { name: 'mlp [5, 300, 300, 300, 2]', model: mlp([5, 300, 300, 300, 2], 'gelu'), stages: 2 },
  ])('stage slices of $name in $stages tile the layers and the parameter vector exactly', ({ model, stages }) => {
    const plans = partitionLayers(model, stages);
    expect(plans).toHaveLength(stages);
    let offset = 0;
    let layer = 0;
    for (const p of plans) {
      expect(p.paramOffset).toBe(offset);
      expect(p.firstLayer).toBe(layer);
      expect(p.endLayer).toBeGreaterThan(p.firstLayer);
      expect(p.inShape).toEqual(model.layers[p.firstLayer].inShape);
      expect(p.outShape).toEqual(model.layers[p.endLayer - 1].outShape);
      const tensors = model.layers.slice(p.firstLayer, p.endLayer).flatMap((l) => l.params);
      expect(tensors.reduce((n, t) => n + t.size, 0)).toBe(p.paramCount);
      if (tensors.length) expect(tensors[0].offset).toBe(p.paramOffset);
      offset += p.paramCount;
      layer = p.endLayer;
    }
    expect(offset).toBe(model.paramCount);
    expect(layer).toBe(model.layers.length);
  });
});
