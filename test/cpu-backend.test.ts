// The cpu backend (the CPU layer executor, shared/cpu/layer-executor.ts, and LayerCpuBackend on
// it) on the MLP form against the CPU oracle (the plain-loop reference through the same chain
// rule): gradients, logits, parameter updates between steps, on awkward shapes and on both the
// sparse-input and the dense products; plus training and bad input.
import { afterEach, describe, expect, test } from 'vitest';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { CpuLayerExecutor } from '../shared/cpu/layer-executor.ts';
import { setSparseBelow } from '../shared/cpu/linear.ts';
import { describeModel, forwardRange, type ModelDescription } from '../shared/layers/sequence.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { initMlpParams, mlpDepth, type MlpSpec } from '../shared/model.ts';
import { optimizerStepRef } from '../shared/reference/optimizer.ts';
import { createRng, type Rng } from '../shared/rng.ts';
import { referenceGradients, relativeError } from './helpers/stage-chain.ts';

const DEFAULT_SPARSE_BELOW = 0.5;
afterEach(() => void setSparseBelow(DEFAULT_SPARSE_BELOW));

const mlpModel = (spec: MlpSpec): ModelDescription => describeModel(mlpLayers(spec.layers, spec.activation), [spec.layers[0]]);

/** Inputs in [0, 1) with a fraction `zeros` of exact zeros, like MNIST pixels (about 0.8). */
function inputs(rng: Rng, n: number, zeros: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.float() < zeros ? 0 : rng.float();
  return x;
}

function labelsFor(rng: Rng, batch: number, classes: number): Uint32Array {
  return Uint32Array.from({ length: batch }, () => rng.int(classes));
}

interface GradCase {
  name: string;
  spec: MlpSpec;
  batch: number;
  maxBatch?: number;
  zeros?: number;
  /** Fraction of nonzeros under which inputs are multiplied as sparse (default 0.5; 0: never, 1.01: always). */
  sparseBelow?: number;
}

const gradCases: GradCase[] = [
  { name: '784-128-10 relu B=64, MNIST-like sparse input', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0.8 },
  { name: '784-128-10 relu B=64, dense kernels only', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0.8, sparseBelow: 0 },
  { name: '784-128-10 relu B=64, dense input', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0 },
  { name: '7-33-5 gelu B=1', spec: { layers: [7, 33, 5], activation: 'gelu' }, batch: 1 },
  { name: '33-17-129-3 gelu B=7', spec: { layers: [33, 17, 129, 3], activation: 'gelu' }, batch: 7 },
  { name: '33-17-129-3 gelu B=7, sparse kernels only', spec: { layers: [33, 17, 129, 3], activation: 'gelu' }, batch: 7, sparseBelow: 1.01 },
  { name: '33-17-129-3 relu B=7 of maxBatch 9, half zeros', spec: { layers: [33, 17, 129, 3], activation: 'relu' }, batch: 7, maxBatch: 9, zeros: 0.5 },
  { name: '5-1-3 relu B=3 (a width-1 layer)', spec: { layers: [5, 1, 3], activation: 'relu' }, batch: 3 },
  { name: '1-2 B=5 (no hidden layer)', spec: { layers: [1, 2], activation: 'relu' }, batch: 5 },
  { name: '13-9-6-11 gelu B=17', spec: { layers: [13, 9, 6, 11], activation: 'gelu' }, batch: 17 },
  { name: '517-33-7 relu B=129, sparse kernels only', spec: { layers: [517, 33, 7], activation: 'relu' }, batch: 129, zeros: 0.3, sparseBelow: 1.01 },
];

describe('the CPU backend on the MLP form: gradients against the reference', () => {
  test.for(gradCases)('$name', async ({ spec, batch, maxBatch, zeros, sparseBelow }) => {
    setSparseBelow(sparseBelow ?? DEFAULT_SPARSE_BELOW);
    const rng = createRng(batch * 7919 + spec.layers.length);
    const classes = spec.layers[mlpDepth(spec)];
    const model = mlpModel(spec);
    const params = initMlpParams(spec, 3);
    const x = inputs(rng, batch * spec.layers[0], zeros ?? 0);
    const labels = labelsFor(rng, batch, classes);
    const backend = new LayerCpuBackend(model, maxBatch ?? batch);
    backend.setParams(params);

    const { loss, grads } = await backend.gradients(x, labels, batch);
    const ref = referenceGradients(model, params, x, labels, batch);
    expect(relativeError(grads, ref.grads)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThanOrEqual(1e-6);
    // Gradients depend on (params, batch) only: a second call gives the same values, and neither
    // call moves the parameters.
    const first = grads.slice();
    expect(Array.from((await backend.gradients(x, labels, batch)).grads)).toEqual(Array.from(first));
    expect(Array.from(params)).toEqual(Array.from(initMlpParams(spec, 3)));
  });
});

describe('CpuLayerExecutor.predict against the reference forward', () => {
  test.for([
    { spec: { layers: [784, 128, 10], activation: 'relu' } as MlpSpec, n: 150, zeros: 0.8 },
    { spec: { layers: [33, 17, 129, 3], activation: 'gelu' } as MlpSpec, n: 7, zeros: 0 },
  ])('$spec.layers $spec.activation, $n rows', async ({ spec, n, zeros }) => {
    const rng = createRng(11);
    const model = mlpModel(spec);
    const params = initMlpParams(spec, 5);
    const x = inputs(rng, n * spec.layers[0], zeros);
    const exec = new CpuLayerExecutor(model, { maxBatch: n });
    exec.setParams(params);
    const logits = await exec.predict(x, n);
    expect(logits.length).toBe(n * spec.layers[mlpDepth(spec)]);
    expect(relativeError(logits, forwardRange(model, params, x, n).y)).toBeLessThanOrEqual(1e-5);
  });
});

describe('parameter updates between steps', () => {
  test('new parameters change what the next forward computes (nothing stale is kept)', async () => {
    const s: MlpSpec = { layers: [784, 32, 10], activation: 'relu' };
    const model = mlpModel(s);
    const rng = createRng(4);
    const x = inputs(rng, 8 * 784, 0.8);
    const labels = labelsFor(rng, 8, 10);
    const exec = new CpuLayerExecutor(model, { maxBatch: 8 });
    const params = initMlpParams(s, 2);
    exec.setParams(params);
    const { grads } = await exec.computeGradients(x, labels, 8);
    optimizerStepRef(params, grads.slice(), {}, { kind: 'sgd', lr: 0.5 }, 1);
    exec.setParams(params);
    const ref = referenceGradients(model, params, x, labels, 8);
    expect(relativeError((await exec.computeGradients(x, labels, 8)).grads, ref.grads)).toBeLessThanOrEqual(1e-5);
  });
});

describe('training on the CPU backend', () => {
  test('Adam on separable synthetic data drives the loss down and classifies', async () => {
    // Four classes, each a noisy copy of its own sparse prototype image.
    const spec: MlpSpec = { layers: [64, 32, 4], activation: 'relu' };
    const model = mlpModel(spec);
    const rng = createRng(99);
    const prototypes = Array.from({ length: 4 }, () => inputs(rng, 64, 0.7));
    const batch = 32;
    const makeBatch = () => {
      const labels = labelsFor(rng, batch, 4);
      const x = new Float32Array(batch * 64);
      for (let r = 0; r < batch; r++) {
        for (let c = 0; c < 64; c++) x[r * 64 + c] = prototypes[labels[r]][c] === 0 ? 0 : prototypes[labels[r]][c] + 0.3 * rng.normal();
      }
      return { x, labels };
    };
    const exec = new CpuLayerExecutor(model, { maxBatch: batch });
    const params = initMlpParams(spec, 1);
    const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
    const losses: number[] = [];
    for (let t = 1; t <= 150; t++) {
      const { x, labels } = makeBatch();
      exec.setParams(params);
      const { loss, grads } = await exec.computeGradients(x, labels, batch);
      losses.push(loss);
      optimizerStepRef(params, grads, state, { kind: 'adam', lr: 1e-2 }, t);
    }
    // At initialisation the loss is about ln 4 = 1.39 (chance); after training it is near zero.
    expect(losses[0]).toBeGreaterThan(1.2);
    const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
    expect(last).toBeLessThan(0.1);

    const test = makeBatch();
    exec.setParams(params);
    const logits = await exec.predict(test.x, batch);
    let correct = 0;
    for (let r = 0; r < batch; r++) {
      const row = Array.from(logits.subarray(r * 4, r * 4 + 4));
      if (row.indexOf(Math.max(...row)) === test.labels[r]) correct++;
    }
    expect(correct).toBeGreaterThanOrEqual(batch - 1);
  });
});

describe('the CPU executor rejects bad input with a message naming it', () => {
  const spec: MlpSpec = { layers: [6, 5, 3], activation: 'relu' };
  const model = mlpModel(spec);
  const exec = new CpuLayerExecutor(model, { maxBatch: 4 });
  exec.setParams(initMlpParams(spec, 1));
  const x = new Float32Array(4 * 6);
  const ok = [0, 1, 2, 0];

  test('x of the wrong length', async () => {
    await expect(exec.computeGradients(new Float32Array(23), ok, 4)).rejects.toThrow(/x has 23 values, expected 4 × 6 = 24/);
    await expect(exec.predict(new Float32Array(5), 1)).rejects.toThrow(/x has 5 values, expected 1 × 6 = 6/);
  });

  test('batch past maxBatch, or not a positive integer', async () => {
    await expect(exec.computeGradients(new Float32Array(5 * 6), [0, 1, 2, 0, 1], 5)).rejects.toThrow(/batch 5 is outside \[1, maxBatch 4\]/);
    await expect(exec.computeGradients(x, ok, 0)).rejects.toThrow(/batch 0 is outside/);
    expect(() => new CpuLayerExecutor(model, { maxBatch: 0 })).toThrow(/maxBatch must be a positive integer/);
  });

  test('labels out of range, fractional, or of the wrong count', async () => {
    await expect(exec.computeGradients(x, [0, 1, 3, 0], 4)).rejects.toThrow(/label 2 is 3, expected an integer in \[0, 3\)/);
    await expect(exec.computeGradients(x, [0, -1, 2, 0], 4)).rejects.toThrow(/label 1 is -1/);
    await expect(exec.computeGradients(x, [0, 1, 1.5, 0], 4)).rejects.toThrow(/label 2 is 1.5/);
    await expect(exec.computeGradients(x, [0, 1, 2], 4)).rejects.toThrow(/3 labels, expected 4/);
  });

  test('parameters of the wrong size', () => {
    expect(() => exec.setParams(new Float32Array(10))).toThrow(/expected 53 parameters, got 10/);
  });

  test('an empty range of layers', () => {
    expect(() => new CpuLayerExecutor(model, { first: 2, end: 2, maxBatch: 1 })).toThrow(/not a non-empty range/);
  });
});
