// The cpu backend (client/cpu/mlp-cpu.ts) against the CPU oracle: gradients against
// mlpGradientsRef, logits against mlpForwardRef, optimizer steps against optimizerStepRef, on
// awkward shapes and on both its sparse and dense kernels; plus training and bad input.
import { describe, expect, test } from 'vitest';
import { CpuMlp, type CpuMlpOptions } from '../client/cpu/mlp-cpu.ts';
import { initMlpParams, mlpDepth, type MlpSpec } from '../shared/model.ts';
import { argmaxRows, mlpForwardRef, mlpGradientsRef } from '../shared/reference/mlp.ts';
import { optimizerStepRef, type OptimizerConfig } from '../shared/reference/optimizer.ts';
import { createRng, randomUniform, type Rng } from '../shared/rng.ts';

/** max |a - e| / max |e|: the error measure of every comparison here. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale > 0 ? err / scale : err;
}

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
  options?: CpuMlpOptions;
}

const gradCases: GradCase[] = [
  { name: '784-128-10 relu B=64, MNIST-like sparse input', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0.8 },
  { name: '784-128-10 relu B=64, dense kernels only', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0.8, options: { sparseBelow: 0 } },
  { name: '784-128-10 relu B=64, dense input', spec: { layers: [784, 128, 10], activation: 'relu' }, batch: 64, zeros: 0 },
  { name: '7-33-5 gelu B=1', spec: { layers: [7, 33, 5], activation: 'gelu' }, batch: 1 },
  { name: '33-17-129-3 gelu B=7', spec: { layers: [33, 17, 129, 3], activation: 'gelu' }, batch: 7 },
  { name: '33-17-129-3 gelu B=7, sparse kernels only', spec: { layers: [33, 17, 129, 3], activation: 'gelu' }, batch: 7, options: { sparseBelow: 1.01 } },
  { name: '33-17-129-3 relu B=7 of maxBatch 9, half zeros', spec: { layers: [33, 17, 129, 3], activation: 'relu' }, batch: 7, maxBatch: 9, zeros: 0.5 },
  { name: '5-1-3 relu B=3 (a width-1 layer)', spec: { layers: [5, 1, 3], activation: 'relu' }, batch: 3 },
  { name: '1-2 B=5 (no hidden layer)', spec: { layers: [1, 2], activation: 'relu' }, batch: 5 },
  { name: '13-9-6-11 gelu B=17', spec: { layers: [13, 9, 6, 11], activation: 'gelu' }, batch: 17 },
  { name: '517-33-7 relu B=129, sparse kernels only', spec: { layers: [517, 33, 7], activation: 'relu' }, batch: 129, zeros: 0.3, options: { sparseBelow: 1.01 } },
];

describe('CpuMlp.computeGradients against mlpGradientsRef', () => {
  test.for(gradCases)('$name', ({ spec, batch, maxBatch, zeros, options }) => {
    const rng = createRng(batch * 7919 + spec.layers.length);
    const classes = spec.layers[mlpDepth(spec)];
    const params = initMlpParams(spec, 3);
    const x = inputs(rng, batch * spec.layers[0], zeros ?? 0);
    const labels = labelsFor(rng, batch, classes);
    const mlp = new CpuMlp(spec, maxBatch ?? batch, options);
    mlp.setParams(params);

    const { loss, grads } = mlp.computeGradients(x, labels, batch);
    const ref = mlpGradientsRef(spec, params, x, labels, batch);
    expect(relativeError(grads, ref.grads)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThanOrEqual(1e-6);
    // Gradients depend on (params, batch) only: a second call gives the same values, and neither
    // call moves the parameters.
    const first = grads.slice();
    expect(Array.from(mlp.computeGradients(x, labels, batch).grads)).toEqual(Array.from(first));
    expect(Array.from(mlp.getParams())).toEqual(Array.from(params));
  });
});

describe('CpuMlp.predict against mlpForwardRef', () => {
  test.for([
    { spec: { layers: [784, 128, 10], activation: 'relu' } as MlpSpec, n: 150, maxBatch: 64, zeros: 0.8 },
    { spec: { layers: [33, 17, 129, 3], activation: 'gelu' } as MlpSpec, n: 7, maxBatch: 7, zeros: 0 },
    { spec: { layers: [7, 33, 5], activation: 'gelu' } as MlpSpec, n: 0, maxBatch: 4, zeros: 0 },
  ])('$spec.layers $spec.activation, $n rows through maxBatch $maxBatch', ({ spec, n, maxBatch, zeros }) => {
    const rng = createRng(11);
    const params = initMlpParams(spec, 5);
    const x = inputs(rng, n * spec.layers[0], zeros);
    const mlp = new CpuMlp(spec, maxBatch);
    mlp.setParams(params);
    const logits = mlp.predict(x, n);
    const classes = spec.layers[mlpDepth(spec)];
    expect(logits.length).toBe(n * classes);
    if (n === 0) return;
    const ref = mlpForwardRef(spec, params, x, n).out[mlpDepth(spec) - 1];
    expect(relativeError(logits, ref)).toBeLessThanOrEqual(1e-5);
  });
});

describe('CpuMlp.step against optimizerStepRef', () => {
  const spec: MlpSpec = { layers: [9, 17, 4], activation: 'gelu' };
  test.for<OptimizerConfig>([
    { kind: 'sgd', lr: 0.1, weightDecay: 0.01 },
    { kind: 'momentum', lr: 0.05, momentum: 0.8 },
    { kind: 'adam', lr: 1e-3 },
    { kind: 'adamw', lr: 1e-2, weightDecay: 0.1 },
  ])('$kind: three steps match the reference exactly', (config) => {
    const rng = createRng(21);
    const params = initMlpParams(spec, 8);
    const mlp = new CpuMlp(spec, 4);
    mlp.setParams(params);
    const expected = params.slice();
    const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
    for (let t = 1; t <= 3; t++) {
      const g = randomUniform(rng, params.length, -0.5, 0.5);
      mlp.step(g, config, t);
      optimizerStepRef(expected, g, state, config, t);
      expect(Array.from(mlp.getParams())).toEqual(Array.from(expected));
    }
  });

  test('a step changes what the next forward computes (the cached transposed weights follow)', () => {
    const s: MlpSpec = { layers: [784, 32, 10], activation: 'relu' };
    const rng = createRng(4);
    const x = inputs(rng, 8 * 784, 0.8);
    const labels = labelsFor(rng, 8, 10);
    const mlp = new CpuMlp(s, 8);
    mlp.setParams(initMlpParams(s, 2));
    const { grads } = mlp.computeGradients(x, labels, 8);
    mlp.step(grads.slice(), { kind: 'sgd', lr: 0.5 }, 1);
    const ref = mlpGradientsRef(s, mlp.getParams(), x, labels, 8);
    expect(relativeError(mlp.computeGradients(x, labels, 8).grads, ref.grads)).toBeLessThanOrEqual(1e-5);
  });
});

describe('CpuMlp training', () => {
  test('Adam on separable synthetic data drives the loss down and classifies', () => {
    // Four classes, each a noisy copy of its own sparse prototype image.
    const spec: MlpSpec = { layers: [64, 32, 4], activation: 'relu' };
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
    const mlp = new CpuMlp(spec, batch);
    mlp.setParams(initMlpParams(spec, 1));
    const losses: number[] = [];
    for (let t = 1; t <= 150; t++) {
      const { x, labels } = makeBatch();
      const { loss, grads } = mlp.computeGradients(x, labels, batch);
      losses.push(loss);
      mlp.step(grads, { kind: 'adam', lr: 1e-2 }, t);
    }
    // At initialisation the loss is about ln 4 = 1.39 (chance); after training it is near zero.
    expect(losses[0]).toBeGreaterThan(1.2);
    const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
    expect(last).toBeLessThan(0.1);

    const test = makeBatch();
    const predicted = argmaxRows(mlp.predict(test.x, batch), batch, 4);
    const correct = predicted.filter((p, i) => p === test.labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(batch - 1);
  });
});

describe('CpuMlp rejects bad input with a message naming it', () => {
  const spec: MlpSpec = { layers: [6, 5, 3], activation: 'relu' };
  const mlp = new CpuMlp(spec, 4);
  mlp.setParams(initMlpParams(spec, 1));
  const x = new Float32Array(4 * 6);
  const ok = [0, 1, 2, 0];

  test('x of the wrong length', () => {
    expect(() => mlp.computeGradients(new Float32Array(23), ok, 4)).toThrow(/x has 23 values, expected batch 4 × 6 features = 24/);
    expect(() => mlp.predict(new Float32Array(5), 1)).toThrow(/x has 5 values, expected n 1 × 6 features = 6/);
  });

  test('batch past maxBatch, or not a positive integer', () => {
    expect(() => mlp.computeGradients(new Float32Array(5 * 6), [0, 1, 2, 0, 1], 5)).toThrow(/batch must be an integer in \[1, maxBatch 4\], got 5/);
    expect(() => mlp.computeGradients(x, ok, 0)).toThrow(/batch must be an integer .* got 0/);
    expect(() => new CpuMlp(spec, 0)).toThrow(/maxBatch must be a positive integer/);
  });

  test('labels out of range, fractional, or of the wrong count', () => {
    expect(() => mlp.computeGradients(x, [0, 1, 3, 0], 4)).toThrow(/label 2 is 3, expected an integer in \[0, 3\)/);
    expect(() => mlp.computeGradients(x, [0, -1, 2, 0], 4)).toThrow(/label 1 is -1/);
    expect(() => mlp.computeGradients(x, [0, 1, 1.5, 0], 4)).toThrow(/label 2 is 1.5/);
    expect(() => mlp.computeGradients(x, [0, 1, 2], 4)).toThrow(/labels has 3 values, expected batch 4/);
  });

  test('parameters or gradients of the wrong size', () => {
    expect(() => mlp.setParams(new Float32Array(10))).toThrow(/expected 53 parameters, got 10/);
    expect(() => mlp.step(new Float32Array(52), { kind: 'sgd', lr: 0.1 }, 1)).toThrow(/grads has 52 values, expected 53/);
  });

  test('an invalid model spec', () => {
    expect(() => new CpuMlp({ layers: [4], activation: 'relu' }, 1)).toThrow(/at least an input and an output/);
  });
});
