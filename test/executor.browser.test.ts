// The MLP form on the WebGPU layer executor against the CPU reference (shared/layers
// forwardRange/backwardRange): gradients of whole MLPs, the parameter layout, and one-tab
// training's optimizer steps on the GPU (client/nn/trainer.ts).
import { describe, expect, test } from 'vitest';
import { LayerExecutor } from '../client/nn/layer-executor.ts';
import { TabTrainer } from '../client/nn/trainer.ts';
import { describeModel, initModelParams } from '../shared/layers/index.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { initMlpParams, mlpLayout, type MlpSpec } from '../shared/model.ts';
import { optimizerStepRef } from '../shared/reference/optimizer.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { expectClose } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { referenceGradients, relativeError } from './helpers/stage-chain.ts';

const mlpModel = (spec: MlpSpec) => describeModel(mlpLayers(spec.layers, spec.activation), [spec.layers[0]]);

describe('MLP gradients on the layer executor match the CPU reference (1e-4 relative)', () => {
  test.for([
    { layers: [7, 33, 5], activation: 'relu', batch: 9 },
    { layers: [7, 33, 5], activation: 'gelu', batch: 1 },
    { layers: [33, 17, 129, 3], activation: 'gelu', batch: 7 },
    { layers: [784, 128, 10], activation: 'relu', batch: 64 },
    { layers: [5, 1, 2], activation: 'relu', batch: 3 },
  ] as const)('layers=$layers $activation B=$batch', async ({ layers, activation, batch }) => {
    const gpu = await testGpu();
    const spec: MlpSpec = { layers: [...layers], activation };
    const model = mlpModel(spec);
    const exec = new LayerExecutor(gpu, model, { maxBatch: batch });
    const params = initMlpParams(spec, 7);
    exec.setParams(params);
    const rng = createRng(layers.length * 100 + batch);
    const x = randomUniform(rng, batch * layers[0], 0, 1);
    const labels = Array.from({ length: batch }, () => rng.int(layers[layers.length - 1]));
    const { loss, grads } = await exec.computeGradients(x, labels, batch);
    const ref = referenceGradients(model, params, x, labels, batch);
    const err = relativeError(grads, ref.grads);
    expect(err, `max relative gradient error ${err.toExponential(2)}`).toBeLessThan(1e-4);
    expect(loss).toBeCloseTo(ref.loss, 5);
    exec.destroy();
  });
});

describe('parameters', () => {
  const spec: MlpSpec = { layers: [784, 128, 10], activation: 'relu' };

  test('seeded init is deterministic and reads back in the documented dense order', async () => {
    const gpu = await testGpu();
    const a = new TabTrainer(gpu, mlpModel(spec), { batch: 4, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 3 });
    const params = await a.exec.getParams();
    expect(params.length).toBe(784 * 128 + 128 + 128 * 10 + 10);
    expect([...params.subarray(0, 16)]).toEqual([...initMlpParams(spec, 3).subarray(0, 16)]);
    expect([...initModelParams(mlpModel(spec), 3)]).toEqual([...initMlpParams(spec, 3)]);
    expect([...initMlpParams(spec, 3).subarray(0, 16)]).not.toEqual([...initMlpParams(spec, 4).subarray(0, 16)]);
    // PyTorch nn.Linear bound: |w| <= 1/sqrt(fan_in).
    const { tensors } = mlpLayout(spec);
    expect(tensors.map((t) => `${t.name}${JSON.stringify(t.shape)}`)).toEqual(['0.weight[128,784]', '0.bias[128]', '2.weight[10,128]', '2.bias[10]']);
    expect(mlpModel(spec).layers.flatMap((l) => l.params.map((p) => `${p.name}${JSON.stringify(p.shape)}`))).toEqual(tensors.map((t) => `${t.name}${JSON.stringify(t.shape)}`));
    expect(Math.max(...params.subarray(0, 784 * 128).map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(784));
    a.destroy();
  });

  test('setParams then getParams round-trips exactly', async () => {
    const gpu = await testGpu();
    const exec = new LayerExecutor(gpu, mlpModel(spec), { maxBatch: 4 });
    const p = randomUniform(createRng(11), mlpLayout(spec).count);
    exec.setParams(p);
    expect([...(await exec.getParams())]).toEqual([...p]);
    expect(() => exec.setParams(new Float32Array(5))).toThrow(/expected 101770 parameters, got 5/);
    exec.destroy();
  });

  test.for(['sgd', 'momentum', 'adam', 'adamw'] as const)('three %s steps match the reference optimizer', async (kind) => {
    const gpu = await testGpu();
    const small: MlpSpec = { layers: [6, 9, 4], activation: 'gelu' };
    const model = mlpModel(small);
    const config = { kind, lr: 0.05, weightDecay: 0.01 };
    const trainer = new TabTrainer(gpu, model, { batch: 5, optimizer: config, seed: 5 });
    const rng = createRng(99);
    let params = initMlpParams(small, 5);
    const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
    for (let t = 1; t <= 3; t++) {
      const x = randomUniform(rng, 5 * 6, 0, 1);
      const labels = [0, 1, 2, 3, 1];
      await trainer.step(x, labels);
      const { grads } = referenceGradients(model, params, x, labels, 5);
      params = new Float32Array(params);
      optimizerStepRef(params, grads, state, config, t);
    }
    expectClose(await trainer.exec.getParams(), params, { atol: 2e-6, rtol: 1e-4 }, `${kind} params after 3 steps`);
    trainer.destroy();
  });
});
