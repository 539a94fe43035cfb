// Every layer kind's plain-loop reference, on its own terms: its backward against central
// finite differences of Σ r·forward(x) (inputs and parameters), on awkward shapes; and whole
// models (a CNN, a transformer) through the one chain rule, with PyTorch's parameter names.
import { describe, expect, test } from 'vitest';
import { describeModel, expandLayers, forwardRange, backwardRange, initModelParams, layerKind, lossAndGradient, LayerError, sizeOf, type LayerConfig } from '../shared/layers/index.ts';
import { createRng } from '../shared/rng.ts';
import { LAYER_CASES as cases, layerCaseInput } from './helpers/layer-cases.ts';

const H = 1e-2;

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Central differences of f at v (perturbing v in place, restored after). */
function numeric(v: Float32Array, f: () => number): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + H;
    const up = f();
    v[i] = keep - H;
    const down = f();
    v[i] = keep;
    g[i] = (up - down) / (2 * H);
  }
  return g;
}

describe('each layer kind: backward equals finite differences', () => {
  test.for(cases)('$name', (c) => {
    const rng = createRng(7);
    const model = describeModel([c.config], c.inShape);
    const layer = model.layers[0];
    const kind = layerKind(c.config.kind);
    const params = initModelParams(model, 3);
    // Non-trivial layernorm affine parameters and biases.
    for (let i = 0; i < params.length; i++) params[i] += rng.uniform(-0.3, 0.3);
    const n = c.batch * sizeOf(c.inShape);
    const x = layerCaseInput(c, n, rng);
    const r = Float32Array.from({ length: c.batch * sizeOf(layer.outShape) }, () => rng.uniform(-1, 1));
    const views = () => layer.params.map((p) => params.subarray(p.offset, p.offset + p.size));
    const objective = () => dot(kind.forward(c.config, c.inShape, views(), x, c.batch).y, r);
    const f = kind.forward(c.config, c.inShape, views(), x, c.batch);
    expect(f.y.length).toBe(c.batch * sizeOf(layer.outShape));
    const { dx, dp } = kind.backward(c.config, c.inShape, views(), f.cache, r, c.batch);
    if (!c.noInputGrad) expectNear(dx, numeric(x, objective), 2e-3, 2e-2, 'dx');
    layer.params.forEach((p, k) => expectNear(dp[k], numeric(params.subarray(p.offset, p.offset + p.size), objective), 2e-3, 2e-2, p.name));
  });
});

describe('models', () => {
  const CNN: LayerConfig[] = [
    { kind: 'conv2d', out: 8, kernel: 5 },
    { kind: 'relu' },
    { kind: 'maxpool2d', size: 2 },
    { kind: 'conv2d', out: 16, kernel: 5 },
    { kind: 'relu' },
    { kind: 'maxpool2d', size: 2 },
    { kind: 'flatten' },
    { kind: 'dense', out: 10 },
  ];

  test("the MNIST CNN's parameters carry nn.Sequential's names and shapes", () => {
    const m = describeModel(CNN, [1, 28, 28]);
    expect(m.layers.flatMap((l) => l.params.map((p) => [p.name, p.shape]))).toEqual([
      ['0.weight', [8, 1, 5, 5]],
      ['0.bias', [8]],
      ['3.weight', [16, 8, 5, 5]],
      ['3.bias', [16]],
      ['7.weight', [10, 256]],
      ['7.bias', [10]],
    ]);
    expect(m.outShape).toEqual([10]);
    expect(m.paramCount).toBe(8 * 25 + 8 + 16 * 8 * 25 + 16 + 2560 + 10);
  });

  test('a layer list that does not fit names the layer and the shape', () => {
    expect(() => describeModel([{ kind: 'conv2d', out: 4, kernel: 5 }, { kind: 'dense', out: 10 }], [1, 28, 28])).toThrow(/layer 1 \(dense\) on input \[4, 24, 24\]/);
    expect(() => describeModel([{ kind: 'maxpool2d', size: 3 }], [1, 2, 2])).toThrow(LayerError);
    expect(() => describeModel([{ kind: 'attention', heads: 3 }], [4, 8])).toThrow(/8 channels do not split into 3 heads/);
    expect(() => describeModel([{ kind: 'dense', out: 10, widht: 3 }], [4])).toThrow(/unknown field "widht"/);
    expect(() => describeModel([{ kind: 'convolution' }], [4])).toThrow(/unknown layer kind "convolution"/);
  });

  test('transformer-block expands to pre-LayerNorm attention and MLP, each residual', () => {
    const layers = expandLayers([{ kind: 'embedding', vocab: 11, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: 11 }]);
    const m = describeModel(layers, [6]);
    expect(m.outShape).toEqual([6, 11]);
    const names = m.layers.flatMap((l) => l.params.map((p) => p.name));
    expect(names).toEqual([
      '0.weight',
      '1.weight',
      '2.fn.0.weight',
      '2.fn.0.bias',
      '2.fn.1.in_proj_weight',
      '2.fn.1.in_proj_bias',
      '2.fn.1.out_proj.weight',
      '2.fn.1.out_proj.bias',
      '3.fn.0.weight',
      '3.fn.0.bias',
      '3.fn.1.weight',
      '3.fn.1.bias',
      '3.fn.3.weight',
      '3.fn.3.bias',
      '4.weight',
      '4.bias',
      '5.weight',
      '5.bias',
    ]);
    expect(m.layers[3].params.find((p) => p.name === '3.fn.1.weight')!.shape).toEqual([32, 8]);
  });

  // Whole-model gradients of the loss through the chain rule, against finite differences on a
  // sample of parameters (every parameter would take minutes).
  const models: { name: string; layers: LayerConfig[]; inShape: number[]; batch: number; labels: (rng: ReturnType<typeof createRng>) => number[]; input: (rng: ReturnType<typeof createRng>, n: number) => Float32Array }[] = [
    {
      name: 'small CNN on [1, 9, 9]',
      layers: [{ kind: 'conv2d', out: 3, kernel: 3 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'conv2d', out: 4, kernel: 2, padding: 1 }, { kind: 'gelu' }, { kind: 'avgpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 5 }],
      inShape: [1, 9, 9],
      batch: 3,
      labels: (rng) => [0, 1, 2].map(() => rng.int(5)),
      input: (rng, n) => Float32Array.from({ length: n }, () => rng.uniform(0, 1)),
    },
    {
      name: 'small transformer, context 5, vocabulary 7',
      layers: expandLayers([{ kind: 'embedding', vocab: 7, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: 7 }]),
      inShape: [5],
      batch: 2,
      labels: (rng) => Array.from({ length: 10 }, () => rng.int(7)),
      input: (rng, n) => Float32Array.from({ length: n }, () => rng.int(7)),
    },
  ];

  test.for(models)('$name: loss gradient equals finite differences', (m) => {
    const rng = createRng(5);
    const model = describeModel(m.layers, m.inShape);
    const params = initModelParams(model, 9);
    const x = m.input(rng, m.batch * sizeOf(m.inShape));
    const labels = m.labels(rng);
    const loss = () => lossAndGradient(model.outShape, forwardRange(model, params, x, m.batch).y, labels, m.batch).loss;
    const f = forwardRange(model, params, x, m.batch);
    const head = lossAndGradient(model.outShape, f.y, labels, m.batch);
    const grads = new Float32Array(model.paramCount);
    backwardRange(model, params, f.caches, head.dlogits, m.batch, grads);
    const picks = Array.from({ length: 60 }, () => rng.int(model.paramCount));
    for (const i of picks) {
      const keep = params[i];
      params[i] = keep + H;
      const up = loss();
      params[i] = keep - H;
      const down = loss();
      params[i] = keep;
      const fd = (up - down) / (2 * H);
      expect(Math.abs(grads[i] - fd), `parameter ${i}: ${grads[i]} vs ${fd}`).toBeLessThanOrEqual(1e-3 + 3e-2 * Math.abs(fd));
    }
    // A range split in two gives the same gradient as the whole (the pipeline's contract).
    const cut = Math.floor(model.layers.length / 2);
    const a = forwardRange(model, params, x, m.batch, { end: cut });
    const b = forwardRange(model, params, a.y, m.batch, { first: cut });
    const split = new Float32Array(model.paramCount);
    const mid = backwardRange(model, params, b.caches, lossAndGradient(model.outShape, b.y, labels, m.batch).dlogits, m.batch, split, { first: cut });
    backwardRange(model, params, a.caches, mid, m.batch, split, { end: cut });
    expectNear(split, grads, 1e-7, 1e-5, 'split gradient');
  });
});
