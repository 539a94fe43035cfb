// The WebGPU layer executor (client/nn/layer-executor.ts) in real Chromium against the shared
// reference (shared/layers forwardRange/backwardRange + lossAndGradient): whole-model loss and
// gradients of a small CNN and a small transformer, the same models split into two pipeline
// stages with two micro-batches each, and the MLP form described as layers.
// Shapes are small: SwiftShader runs every kernel on the CPU.
import { describe, expect, test } from 'vitest';
import { LayerExecutor } from '../client/nn/layer-executor.ts';
import { lossAndGradient } from '../shared/layers/head.ts';
import { backwardRange, describeModel, expandLayers, forwardRange, initModelParams, LayerError, type LayerConfig, type ModelDescription } from '../shared/layers/index.ts';
import { mlpLayers } from '../shared/layers/shorthand.ts';
import { initMlpParams, type MlpSpec } from '../shared/model.ts';
import { createRng, type Rng } from '../shared/rng.ts';
import { expectClose } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

// float32 sums on the GPU in another order than the reference's (and tanh-GELU, softmax exp in
// WGSL): each parameter tensor's gradient to 1e-4 of its largest element, the loss to 1e-5.
const GRAD_RTOL = 1e-4;
const LOSS_RTOL = 1e-5;

interface ModelCase {
  name: string;
  layers: LayerConfig[];
  inShape: number[];
  /** The whole-model batch; the split runs it as two micro-batches of half. */
  batch: number;
  /** Where the split cuts the layers. */
  cut: number;
  input: (n: number, rng: Rng) => Float32Array;
}

const vocab = 11;

const CASES: ModelCase[] = [
  {
    name: 'CNN',
    // [2, 11, 11] → conv s2 p1 [4, 6, 6] → maxpool [4, 3, 3] → conv k2 p1 [6, 4, 4] → avgpool [6, 2, 2] → [24] → [10] → [5]
    layers: [
      { kind: 'conv2d', out: 4, kernel: 3, stride: 2, padding: 1 },
      { kind: 'relu' },
      { kind: 'maxpool2d', size: 2 },
      { kind: 'conv2d', out: 6, kernel: 2, padding: 1 },
      { kind: 'gelu' },
      { kind: 'avgpool2d', size: 2 },
      { kind: 'flatten' },
      { kind: 'dense', out: 10 },
      { kind: 'relu' },
      { kind: 'dense', out: 5 },
    ],
    inShape: [2, 11, 11],
    batch: 4,
    cut: 3, // the second stage starts with a convolution, so its input gradient runs (col2im)
    input: (n, rng) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1)),
  },
  {
    name: 'transformer',
    // embedding, positional, 2 blocks (each 2 residuals), layernorm, dense to the vocabulary: 8 layers.
    layers: expandLayers([
      { kind: 'embedding', vocab, dim: 8 },
      { kind: 'positional' },
      { kind: 'transformer-block', heads: 2 },
      { kind: 'transformer-block', heads: 2 },
      { kind: 'layernorm' },
      { kind: 'dense', out: vocab },
    ]),
    inShape: [6],
    batch: 4,
    cut: 4, // between the blocks
    input: (n, rng) => Float32Array.from({ length: n }, () => rng.int(vocab)),
  },
];

/** Seeded PyTorch-style init plus noise, so biases, LayerNorm and attention biases are not 0 and 1. */
function testParams(model: ModelDescription, rng: Rng): Float32Array {
  const p = initModelParams(model, 5);
  for (let i = 0; i < p.length; i++) p[i] += rng.uniform(-0.1, 0.1);
  return p;
}

function reference(model: ModelDescription, params: Float32Array, x: Float32Array, labels: number[], batch: number) {
  const f = forwardRange(model, params, x, batch);
  const head = lossAndGradient(model.outShape, f.y, labels, batch);
  const grads = new Float32Array(model.paramCount);
  backwardRange(model, params, f.caches, head.dlogits, batch, grads);
  return { logits: f.y, loss: head.loss, grads };
}

/** Each parameter tensor of the model to GRAD_RTOL of its own largest gradient. */
function expectGradients(model: ModelDescription, actual: Float32Array, expected: Float32Array, base = 0): void {
  for (const l of model.layers) {
    for (const p of l.params) {
      const e = expected.subarray(p.offset, p.offset + p.size);
      const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(actual.subarray(p.offset - base, p.offset - base + p.size), e, { atol: GRAD_RTOL * scale + 1e-9, rtol: 0 }, `gradient of ${p.name}`);
    }
  }
}

function setup(c: ModelCase) {
  const model = describeModel(c.layers, c.inShape);
  const rng = createRng(c.inShape.length * 100 + c.layers.length);
  const params = testParams(model, rng);
  const x = c.input(c.batch * c.inShape.reduce((a, b) => a * b, 1), rng);
  const classes = model.outShape[model.outShape.length - 1];
  const rows = model.outShape.length === 2 ? c.batch * model.outShape[0] : c.batch;
  const labels = Array.from({ length: rows }, () => rng.int(classes));
  return { model, params, x, labels, ref: reference(model, params, x, labels, c.batch) };
}

describe('layer executor: whole-model loss and gradients match the reference', () => {
  test.for(CASES)('$name', async (c) => {
    const gpu = await testGpu();
    const { model, params, x, labels, ref } = setup(c);
    const exec = new LayerExecutor(gpu, model, { maxBatch: c.batch });
    try {
      exec.setParams(params);
      const { loss, grads } = await exec.computeGradients(x, labels, c.batch);
      expect(Math.abs(loss - ref.loss), `loss ${loss}, reference ${ref.loss}`).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(ref.loss));
      expectGradients(model, grads, ref.grads);
      // A second step starts from zero, not from the first step's sum.
      const again = await exec.computeGradients(x, labels, c.batch);
      expectGradients(model, again.grads, ref.grads);
      // predict leaves nothing behind and gives the logits; a smaller batch reuses the buffers.
      expectClose(await exec.predict(x, c.batch), ref.logits, { atol: 1e-5, rtol: 1e-4 }, 'logits');
      const one = reference(model, params, x.subarray(0, x.length / c.batch), labels.slice(0, labels.length / c.batch), 1);
      const step1 = await exec.computeGradients(x.subarray(0, x.length / c.batch), labels.slice(0, labels.length / c.batch), 1);
      expectGradients(model, step1.grads, one.grads);
    } finally {
      exec.destroy();
    }
  });
});

describe('layer executor: two stages with two micro-batches give the whole model gradient', () => {
  test.for(CASES)('$name cut before layer $cut', async (c) => {
    const gpu = await testGpu();
    const { model, params, x, labels, ref } = setup(c);
    const half = c.batch / 2;
    const opts = { maxBatch: half, maxMicroBatches: 2 };
    const a = new LayerExecutor(gpu, model, { ...opts, end: c.cut });
    const b = new LayerExecutor(gpu, model, { ...opts, first: c.cut });
    try {
      expect(a.paramCount + b.paramCount).toBe(model.paramCount);
      expect(b.paramOffset).toBe(a.paramCount);
      a.setParams(params.subarray(0, a.paramCount));
      b.setParams(params.subarray(b.paramOffset));
      a.zeroGrads();
      b.zeroGrads();
      const xs = [x.subarray(0, x.length / 2), x.subarray(x.length / 2)];
      const ys = [labels.slice(0, labels.length / 2), labels.slice(labels.length / 2)];
      // GPipe: both forwards through the first stage, then each micro-batch's loss and backward
      // through the second, and the first stage's backwards in the other order.
      const h = [await a.forward(xs[0], half, 0), await a.forward(xs[1], half, 1)];
      const last = [];
      for (const mb of [0, 1]) last.push(await b.forwardBackwardLoss(h[mb], ys[mb], half, { mb, gradRows: labels.length }));
      expect(await a.backward(last[1].dx!, half, 1)).toBeNull();
      expect(await a.backward(last[0].dx!, half, 0)).toBeNull();
      const loss = (last[0].loss + last[1].loss) / 2;
      expect(Math.abs(loss - ref.loss), `loss ${loss}, reference ${ref.loss}`).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(ref.loss));
      const grads = new Float32Array(model.paramCount);
      grads.set(await a.gradients(), 0);
      grads.set(await b.gradients(), b.paramOffset);
      expectGradients(model, grads, ref.grads);
      await expect(a.backward(last[0].dx!, half, 0)).rejects.toThrow(/not been forwarded/);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});

describe('layer executor: the MLP form as layers gives the reference gradients', () => {
  test.for([
    { widths: [7, 33, 5], activation: 'relu', batch: 9 },
    { widths: [33, 17, 129, 3], activation: 'gelu', batch: 7 },
  ] as const)('$widths $activation B=$batch', async ({ widths, activation, batch }) => {
    const gpu = await testGpu();
    const spec: MlpSpec = { layers: [...widths], activation };
    const params = initMlpParams(spec, 7);
    const rng = createRng(batch);
    const x = Float32Array.from({ length: batch * widths[0] }, () => rng.uniform(0, 1));
    const labels = Array.from({ length: batch }, () => rng.int(widths[widths.length - 1]));
    const model = describeModel(mlpLayers(widths, activation), [widths[0]]);
    // The MLP form's parameters are the layer list's, in the same order.
    expect(model.paramCount).toBe(params.length);
    const f = forwardRange(model, params, x, batch);
    const head = lossAndGradient(model.outShape, f.y, labels, batch);
    const expected = new Float32Array(model.paramCount);
    backwardRange(model, params, f.caches, head.dlogits, batch, expected);
    const exec = new LayerExecutor(gpu, model, { maxBatch: batch });
    try {
      exec.setParams(params);
      const { loss, grads } = await exec.computeGradients(x, labels, batch);
      expect(grads.length).toBe(expected.length);
      expectGradients(model, grads, expected);
      expect(Math.abs(loss - head.loss)).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(head.loss));
    } finally {
      exec.destroy();
    }
  });
});

test('a token id outside the vocabulary is refused before it reaches the GPU', async () => {
  const gpu = await testGpu();
  const model = describeModel([{ kind: 'embedding', vocab: 5, dim: 4 }, { kind: 'dense', out: 5 }], [3]);
  const exec = new LayerExecutor(gpu, model, { maxBatch: 1 });
  try {
    await expect(exec.computeGradients(new Float32Array([0, 5, 1]), [0, 1, 2], 1)).rejects.toThrow(LayerError);
    await expect(exec.computeGradients(new Float32Array([0, 4, 1]), [0, 1, 5], 1)).rejects.toThrow(/label 2 is 5/);
  } finally {
    exec.destroy();
  }
});
