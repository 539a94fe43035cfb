// The fast CPU kernels of each layer kind against the plain-loop reference, on the shared layer
// cases and on whole models (the MNIST CNN, a small transformer): outputs and every gradient.
import { describe, expect, test } from 'vitest';
import { cpuKernels } from '../shared/cpu/index.ts';
import { backwardRange, describeModel, expandLayers, forwardRange, initModelParams, layerKind, lossAndGradient, sizeOf, type LayerConfig } from '../shared/layers/index.ts';
import { createRng } from '../shared/rng.ts';
import { expectClose } from './helpers/check-op.ts';
import { LAYER_CASES, layerCaseInput } from './helpers/layer-cases.ts';

const TOL = { atol: 1e-5, rtol: 1e-4 };

describe('each kind: fast CPU equals the reference', () => {
  test.for(LAYER_CASES)('$name', (c) => {
    const rng = createRng(11);
    const model = describeModel([c.config], c.inShape);
    const layer = model.layers[0];
    const params = initModelParams(model, 2);
    const views = layer.params.map((p) => params.subarray(p.offset, p.offset + p.size));
    const x = layerCaseInput(c, c.batch * sizeOf(c.inShape), rng);
    const dy = Float32Array.from({ length: c.batch * sizeOf(layer.outShape) }, () => rng.uniform(-1, 1));
    const ref = layerKind(c.config.kind);
    const fast = cpuKernels(c.config.kind);
    const a = ref.forward(c.config, c.inShape, views, x, c.batch);
    const b = fast.forward(c.config, c.inShape, views, x, c.batch);
    expectClose(b.y, a.y, TOL, 'y');
    const ga = ref.backward(c.config, c.inShape, views, a.cache, dy, c.batch);
    const gb = fast.backward(c.config, c.inShape, views, b.cache, dy, c.batch);
    expectClose(gb.dx, ga.dx, TOL, 'dx');
    ga.dp.forEach((g, k) => expectClose(gb.dp[k], g, TOL, layer.params[k].name));
  });
});

const models: { name: string; layers: LayerConfig[]; inShape: number[]; batch: number; vocab?: number }[] = [
  {
    name: 'MNIST CNN, batch 5',
    layers: [{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'conv2d', out: 16, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }],
    inShape: [1, 28, 28],
    batch: 5,
  },
  {
    name: 'transformer, 2 blocks, width 16, 4 heads, context 9',
    layers: expandLayers([{ kind: 'embedding', vocab: 13, dim: 16 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 4 }, { kind: 'transformer-block', heads: 4 }, { kind: 'layernorm' }, { kind: 'dense', out: 13 }]),
    inShape: [9],
    batch: 3,
    vocab: 13,
  },
];

describe('whole models: fast CPU gradient equals the reference', () => {
  test.for(models)('$name', (m) => {
    const rng = createRng(4);
    const model = describeModel(m.layers, m.inShape);
    const params = initModelParams(model, 8);
    const n = m.batch * sizeOf(m.inShape);
    const x = m.vocab ? Float32Array.from({ length: n }, () => rng.int(m.vocab!)) : Float32Array.from({ length: n }, () => rng.float());
    const labelCount = m.vocab ? n : m.batch;
    const labels = Array.from({ length: labelCount }, () => rng.int(m.vocab ?? 10));
    const run = (kernels?: typeof cpuKernels) => {
      const f = forwardRange(model, params, x, m.batch, { kernels });
      const head = lossAndGradient(model.outShape, f.y, labels, m.batch);
      const grads = new Float32Array(model.paramCount);
      backwardRange(model, params, f.caches, head.dlogits, m.batch, grads, { kernels });
      return { loss: head.loss, grads };
    };
    const ref = run();
    const fast = run(cpuKernels);
    expect(fast.loss).toBeCloseTo(ref.loss, 5);
    expectClose(fast.grads, ref.grads, TOL, 'gradient');
    expect(ref.grads.some((g) => Math.abs(g) > 1e-4)).toBe(true);
  });
});
