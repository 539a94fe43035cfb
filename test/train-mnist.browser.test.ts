// One-tab training in real Chromium on WebGPU: the recipe of the foundation issue
// (MLP 784-128-10, Adam lr 1e-3, batch 64, 2 epochs) on the 8,000 / 2,000 MNIST split (the 10,000-digit subset, mnist-10k), on the
// layer executor with the optimizer step on the GPU.
import { expect, test } from 'vitest';
import { fetchDatasetSplit } from '../client/data/fetch-dataset.ts';
import { TabTrainer, trainEpochs } from '../client/nn/trainer.ts';
import { describeModel } from '../shared/layers/index.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { testGpu } from './helpers/gpu.ts';

test('MLP 784-128-10, Adam 1e-3, batch 64, 2 epochs reaches >= 0.90 test accuracy', async () => {
  const gpu = await testGpu();
  const train = await fetchDatasetSplit('mnist-10k', 'train');
  const held = await fetchDatasetSplit('mnist-10k', 'test');
  expect([train.count, held.count]).toEqual([8000, 2000]);
  const model = describeModel(mlpLayers([784, 128, 10], 'relu'), [784]);
  const trainer = new TabTrainer(gpu, model, { batch: 64, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 1 });
  const before = await trainer.evaluate(held);
  const result = await trainEpochs(trainer, train, held, { epochs: 2, seed: 1 });
  console.log(
    `2 epochs: test accuracy ${result.testAccuracy.toFixed(4)} (from ${before.accuracy.toFixed(4)}), test loss ${result.testLoss.toFixed(4)}, ` +
      `${result.steps} steps in ${result.seconds.toFixed(1)} s, ${result.samplesPerSec.toFixed(0)} samples/s on ${gpu.info.architecture || gpu.info.vendor}`,
  );
  expect(result.steps).toBe(250);
  expect(before.accuracy).toBeLessThan(0.3);
  expect(result.testAccuracy).toBeGreaterThanOrEqual(0.9);
  // The training loss falls: the last report is well below the first.
  const losses = result.history.map((h) => h.loss);
  expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.5);
  expect(result.history.filter((h) => h.testAccuracy !== undefined)).toHaveLength(2);
});
