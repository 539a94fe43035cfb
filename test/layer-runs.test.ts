// Layer-list models as runs: the spec's two model forms, errors that name the layer that does
// not fit, the MLP form unchanged (same parameters, names and checkpoints as before layers),
// checkpoints of an older spec schema still loading, and a CNN trained across two CPU workers.
import { afterEach, describe, expect, test } from 'vitest';
import { initMlpParams, mlpLayout } from '../shared/model.ts';
import { describeRunModel } from '../shared/run-model.ts';
import { parseRunSpec, RunSpecError, type RunSpecInput } from '../shared/run-spec.ts';
import { encodeCheckpoint, restoreCheckpoint } from '../server/checkpoint.ts';
import { Run } from '../server/run.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';
import { readSafetensors } from './helpers/safetensors-reader.ts';

const CNN = [
  { kind: 'conv2d', out: 8, kernel: 5 },
  { kind: 'relu' },
  { kind: 'maxpool2d', size: 2 },
  { kind: 'conv2d', out: 16, kernel: 5 },
  { kind: 'relu' },
  { kind: 'maxpool2d', size: 2 },
  { kind: 'flatten' },
  { kind: 'dense', out: 10 },
];
const MNIST = { name: 'mnist', features: 784, classes: 10, trainCount: 8000, shards: [], exampleShape: [1, 28, 28] };

describe('the model field', () => {
  test('a list of layer objects is a layer list; the old mlp form still parses as before', () => {
    expect(parseRunSpec({ model: { layers: CNN } }).model).toEqual({ kind: 'layers', layers: CNN });
    expect(parseRunSpec({ model: { layers: [784, 64, 10] } }).model).toEqual({ kind: 'mlp', layers: [784, 64, 10], activation: 'relu' });
    expect(parseRunSpec({}).model).toEqual({ kind: 'mlp', layers: [784, 128, 10], activation: 'relu' });
  });

  test('a layer that does not fit is named with the shape it got, when the run is created', async () => {
    const coord = await startCoordinator({ defaultRun: false });
    try {
      const bad = (layers: unknown[]) => () => coord.app.crowdtrain.createRun({ model: { layers } });
      expect(bad([{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'dense', out: 10 }])).toThrow(RunSpecError);
      expect(bad([{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'dense', out: 10 }])).toThrow(/model\.layers\.1: layer 1 \(dense\) on input \[8, 24, 24\]/);
      expect(bad([{ kind: 'conv2d', out: 8, kernel: 40 }])).toThrow(/kernel 40.*does not fit an input of shape \[1, 28, 28\]/);
      expect(bad([{ kind: 'flatten' }, { kind: 'dense', out: 7 }])).toThrow(/10 classes, so the model must end in \[10\] logits \(it ends in \[7\]\)/);
      expect(bad([{ kind: 'flatten' }, { kind: 'dense', out: 10, size: 3 }])).toThrow(/unknown field "size"/);
      expect(parseRunSpec({ model: { layers: CNN }, parallelism: { stages: 2 } }).parallelism.stages).toBe(2);
      expect(() => parseRunSpec({ model: { layers: CNN }, parallelism: { stages: 9 } })).toThrow(/parallelism\.stages.*at most the number of layers, 8 \(got 9\)/);
      // Nothing was created by the failures.
      expect(coord.app.crowdtrain.scheduler.runs.size).toBe(0);
    } finally {
      await coord.close();
    }
  });

  test('the MLP form as layers: the same initial parameters and tensor names as before', () => {
    for (const mlp of [
      { layers: [784, 128, 10], activation: 'relu' as const },
      { layers: [784, 32, 24, 16, 10], activation: 'gelu' as const },
    ]) {
      const net = describeRunModel({ model: { kind: 'mlp', ...mlp } }, MNIST);
      const run = new Run(parseRunSpec({ model: mlp, seed: 9 }), MNIST);
      expect(Buffer.from(run.params.buffer).equals(Buffer.from(initMlpParams(mlp, 9).buffer))).toBe(true);
      const names = net.description.layers.flatMap((l) => l.params.map((p) => [p.name, p.shape, p.offset]));
      expect(names).toEqual(mlpLayout(mlp).tensors.map((t) => [t.name, t.shape, t.offset]));
    }
  });

  test('a checkpoint written under the spec schema before this version (no round-pacing fields) still loads', () => {
    const run = new Run(parseRunSpec({ seed: 3 }), MNIST);
    run.params[5] = 0.125;
    run.version = 7;
    const bytes = encodeCheckpoint(run);
    // Rewrite the metadata as an older coordinator wrote it: a spec without sync.targetRoundMs & co.
    const old = structuredClone(run.spec) as Record<string, unknown> & { sync: Record<string, unknown> };
    for (const k of ['targetRoundMs', 'maxBatch', 'lrScaling', 'taskSizing']) delete old.sync[k];
    const file = readSafetensors(bytes);
    const header = { ...file.header, __metadata__: { ...file.metadata, spec: JSON.stringify(old), spec_hash: 'written-by-an-older-version' } };
    const json = Buffer.from(JSON.stringify(header));
    const rewritten = new Uint8Array(8 + json.length + (bytes.length - 8 - file.headerLength));
    new DataView(rewritten.buffer).setBigUint64(0, BigInt(json.length), true);
    rewritten.set(json, 8);
    rewritten.set(bytes.subarray(8 + file.headerLength), 8 + json.length);
    const copy = new Run(run.spec, MNIST, run.id);
    restoreCheckpoint(copy, rewritten);
    expect(copy.version).toBe(7);
    expect(copy.params[5]).toBe(0.125);
    // A checkpoint of a really different spec is still refused.
    const other = new Run(parseRunSpec({ seed: 4 }), MNIST, run.id);
    expect(() => restoreCheckpoint(other, rewritten)).toThrow(/another spec/);
  });
});

describe('a CNN across CPU workers', () => {
  let coord: TestCoordinator | undefined;
  const workers: WorkerClient[] = [];
  afterEach(async () => {
    for (const w of workers) w.stop();
    await coord?.close();
  });

  test('two Node workers train the MNIST CNN past 0.9 test accuracy; its checkpoint has nn.Sequential names', async () => {
    const spec: RunSpecInput = { name: 'mnist-cnn', model: { layers: CNN }, optimizer: { kind: 'adam', lr: 1e-3 }, batchPerTask: 32, evalEvery: 5, evalExamples: 500, stop: { targetAccuracy: 0.9 }, sync: { targetRoundMs: 300, maxBatch: 256 } };
    coord = await startCoordinator({ defaultRun: spec });
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    expect(run.paramCount).toBe(208 + 3216 + 2570);
    workers.push(startCpuWorker(coord.url), startCpuWorker(coord.url));
    await waitFor(() => run.state === 'completed', 100_000, 'the CNN to reach 0.9');
    expect(run.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(workers.every((w) => w.stats.tasksDone > 0)).toBe(true);
    const file = readSafetensors(encodeCheckpoint(run));
    const shapes = Object.fromEntries(Object.entries(file.tensors).filter(([n]) => !n.startsWith('optimizer.')).map(([n, t]) => [n, t.shape]));
    expect(shapes).toEqual({ '0.weight': [8, 1, 5, 5], '0.bias': [8], '3.weight': [16, 8, 5, 5], '3.bias': [16], '7.weight': [10, 256], '7.bias': [10] });
    expect(JSON.parse(file.metadata.model).torch).toBe(
      'nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))',
    );
  });
});
