// The try-the-model panel and the wrong-examples strip in real Chromium: a held-out digit set onto
// the canvas gets the model's own prediction of that digit (an MLP and a CNN, both run with the
// shared layer kernels), pointer strokes draw and predict, Clear empties, class names label the
// bars and captions, a character language model writes a continuation of its prompt from its own
// alphabet that follows its parameters, and the strip of mistakes is shorter for a trained model.
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { fetchDatasetSplit } from '../client/data/fetch-dataset.ts';
import { PageModel } from '../client/ui/page-model.ts';
import { mountTryModel, type TryModelOptions, type TryModelSource } from '../client/ui/try-model.ts';
import { mountWrongDigits } from '../client/ui/wrong-digits.ts';
import { cpuKernels } from '../shared/cpu/index.ts';
import { featuresAsFloat, type Dataset } from '../shared/dataset.ts';
import { lossAndGradient } from '../shared/layers/head.ts';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { backwardRange, describeModel, forwardRange, initModelParams } from '../shared/layers/sequence.ts';
import { expandLayers, mlpLayers } from '../shared/layers/shorthand.ts';
import { optimizerStepRef } from '../shared/reference/optimizer.ts';
import type { NetInfo } from '../shared/run-model.ts';

const net: NetInfo = { model: { layers: [784, 128, 10], activation: 'relu' }, layers: mlpLayers([784, 128, 10], 'relu'), inputShape: [784] };
const cnn: NetInfo = {
  model: null,
  layers: [{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }],
  inputShape: [1, 28, 28],
};
const FASHION = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const untrained = initModelParams(describeModel(net.layers, net.inputShape), 7);
let trained: Float32Array;
let trainedCnn: Float32Array;
let held: Dataset;

const argmax = (v: ArrayLike<number>, offset = 0, n = 10) => {
  let best = 0;
  for (let c = 1; c < n; c++) if (v[offset + c] > v[offset + best]) best = c;
  return best;
};

/** A quick model on the shared CPU kernels: `epochs` of adam over the first `count` training digits. */
function train(model: NetInfo, data: Dataset, count: number, epochs: number, seed: number): Float32Array {
  const description = describeModel(model.layers, model.inputShape);
  const params = initModelParams(description, seed);
  const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
  const x = featuresAsFloat(data);
  const batch = 100;
  let t = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let s = 0; s + batch <= Math.min(count, data.count); s += batch) {
      const { y, caches } = forwardRange(description, params, x.subarray(s * 784, (s + batch) * 784), batch, { kernels: cpuKernels });
      const { dlogits } = lossAndGradient(description.outShape, y, data.y.subarray(s, s + batch), batch);
      const grads = new Float32Array(params.length);
      backwardRange(description, params, caches, dlogits, batch, grads, { kernels: cpuKernels });
      optimizerStepRef(params, grads, state, { kind: 'adam', lr: 1e-3 }, ++t);
    }
  }
  return params;
}

/** The model's own logits for one example, through the same executor the pages use. */
function ownPrediction(model: NetInfo, params: Float32Array, pixels: Float32Array): number {
  return argmax(new PageModel().forward(model, params, pixels, 1));
}

beforeAll(async () => {
  const data = await fetchDatasetSplit('mnist-10k', 'train');
  held = await fetchDatasetSplit('mnist-10k', 'test');
  // ~90% after 3 epochs over 8,000 digits (MLP), and one epoch of 4,000 for the small CNN.
  trained = train(net, data, 8000, 3, 1);
  trainedCnn = train(cnn, data, 4000, 1, 2);
}, 120_000);

const mounted: { destroy(): void }[] = [];
afterEach(() => {
  for (const m of mounted.splice(0)) m.destroy();
});

function panel(getModel: () => TryModelSource | null, opts: Omit<TryModelOptions, 'getModel'> = {}) {
  const host = document.createElement('div');
  document.body.append(host);
  const p = mountTryModel(host, { getModel, ...opts });
  mounted.push({ destroy: () => (p.destroy(), host.remove()) });
  return { p, host };
}

/** Fires a pointer event of `type` at canvas coordinates (x, y) of a 280x280 pad. */
function pointer(canvas: HTMLCanvasElement, type: string, x: number, y: number): void {
  const r = canvas.getBoundingClientRect();
  canvas.dispatchEvent(
    new PointerEvent(type, {
      pointerId: 7,
      pointerType: 'pen',
      isPrimary: true,
      button: type === 'pointermove' ? -1 : 0,
      buttons: type === 'pointerup' ? 0 : 1,
      clientX: r.left + (x * r.width) / 280,
      clientY: r.top + (y * r.height) / 280,
      bubbles: true,
      cancelable: true,
    }),
  );
}

/** One stroke through `points` (canvas coordinates), in small steps as a real pen reports them. */
function stroke(canvas: HTMLCanvasElement, points: [number, number][]): void {
  pointer(canvas, 'pointerdown', ...points[0]);
  for (let i = 1; i < points.length; i++) {
    const [[x0, y0], [x1, y1]] = [points[i - 1], points[i]];
    for (let s = 1; s <= 8; s++) pointer(canvas, 'pointermove', x0 + ((x1 - x0) * s) / 8, y0 + ((y1 - y0) * s) / 8);
  }
  pointer(canvas, 'pointerup', ...points[points.length - 1]);
}

describe('try the model', () => {
  test.each([
    ['an MLP on [784]', () => ({ model: net, params: trained })],
    ['a CNN on [1, 28, 28]', () => ({ model: cnn, params: trainedCnn })],
  ])('a held-out digit set onto the canvas gets the same prediction as the model gives that digit: %s', (_name, which) => {
    const { model, params } = which();
    const { p, host } = panel(() => ({ net: model, params, version: 1 }));
    const n = 30;
    let agree = 0;
    const disagreements: string[] = [];
    for (let i = 0; i < n; i++) {
      const pixels = featuresAsFloat(held, i, 1);
      const own = ownPrediction(model, params, pixels);
      p.setDigit(pixels);
      const shown = p.predict();
      expect(shown).not.toBeNull();
      // What the page shows is what predict() returns.
      expect(host.querySelector<HTMLElement>('.try-top')!.dataset.label).toBe(String(shown!.label));
      expect(host.querySelector('.try-bar.try-best')!.getAttribute('data-digit')).toBe(String(shown!.label));
      if (shown!.label === own) agree++;
      else disagreements.push(`digit ${i} (a ${held.y[i]}): model ${own}, panel ${shown!.label}`);
    }
    // Measured: 30 of 30 here for both, and 2000 of 2000 over the whole test split for the MLP.
    console.log(`try-the-model agreement (${_name}): ${agree} of ${n}`, disagreements);
    expect(agree, disagreements.join('; ')).toBeGreaterThanOrEqual(29);
  });

  test('a pen stroke draws and predicts; Clear empties the pad and the bars', () => {
    const { p, host } = panel(() => ({ net, params: trained, version: 1 }));
    const canvas = host.querySelector<HTMLCanvasElement>('canvas.try-canvas')!;
    expect(getComputedStyle(canvas).touchAction).toBe('none');
    expect(p.predict()).toBeNull();
    expect(host.querySelectorAll('.try-bar[data-probability]')).toHaveLength(0);

    // A tall upright stroke, off to one side: the panel centres and scales it into a "1".
    stroke(canvas, [
      [200, 30],
      [196, 250],
    ]);
    const after = p.predict();
    expect(after).not.toBeNull();
    expect(after!.label).toBe(1);
    const bars = [...host.querySelectorAll<HTMLElement>('.try-bar[data-probability]')];
    expect(bars.map((b) => b.dataset.digit)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const sum = bars.reduce((s, b) => s + Number(b.dataset.probability), 0);
    expect(sum).toBeCloseTo(1, 5);
    expect(host.querySelectorAll('.try-bar.try-best')).toHaveLength(1);
    expect(host.querySelector('[data-digit="1"]')!.classList.contains('try-best')).toBe(true);

    host.querySelector<HTMLButtonElement>('.try-clear')!.click();
    expect(p.predict()).toBeNull();
    expect(host.querySelectorAll('.try-bar[data-probability]')).toHaveLength(0);
    expect(host.querySelectorAll('.try-bar.try-best')).toHaveLength(0);
  });

  test('a loop drawn with strokes reads as a 0', () => {
    const { p, host } = panel(() => ({ net, params: trained, version: 1 }));
    const canvas = host.querySelector<HTMLCanvasElement>('canvas.try-canvas')!;
    const loop: [number, number][] = Array.from({ length: 25 }, (_, k) => {
      const a = (2 * Math.PI * k) / 24;
      return [140 + 60 * Math.sin(a), 140 - 95 * Math.cos(a)];
    });
    stroke(canvas, loop);
    expect(p.predict()?.label).toBe(0);
  });

  test('redraw() picks up new parameters', () => {
    let source: TryModelSource | null = null;
    const { p, host } = panel(() => source);
    p.setDigit(featuresAsFloat(held, 0, 1));
    expect(p.predict()).toBeNull();
    expect(host.querySelector('.try-top')!.textContent).toMatch(/waiting/i);

    source = { net, params: untrained, version: 1 };
    p.redraw();
    const before = host.querySelector<HTMLElement>(`[data-digit="${held.y[0]}"]`)!.dataset.probability;
    source = { net, params: trained, version: 2 };
    p.redraw();
    const after = host.querySelector<HTMLElement>(`[data-digit="${held.y[0]}"]`)!.dataset.probability;
    expect(Number(after)).toBeGreaterThan(Number(before));
    expect(p.predict()!.label).toBe(held.y[0]);
  });
});

describe('wrong digits', () => {
  test('the strip shows fewer mistakes for a trained model than an untrained one, each captioned', () => {
    const host = document.createElement('div');
    document.body.append(host);
    const strip = mountWrongDigits(host, { test: held, max: 24 });
    mounted.push({ destroy: () => (strip.destroy(), host.remove()) });

    const raw = strip.update({ net, params: untrained });
    expect(raw.shown).toBe(24);
    expect(host.querySelectorAll('.wrong-digit')).toHaveLength(24);

    const learnt = strip.update({ net, params: trained });
    console.log(`wrong digits: untrained ${raw.wrong}, trained ${learnt.wrong} of ${held.count}`);
    expect(raw.wrong).toBeGreaterThan(held.count / 2);
    expect(learnt.wrong).toBeLessThan(held.count * 0.15);
    expect(learnt.wrong).toBeLessThan(raw.wrong);

    // Every tile is a digit the trained model gets wrong, captioned with what it said.
    const tiles = [...host.querySelectorAll<HTMLElement>('.wrong-digit')];
    expect(tiles).toHaveLength(Math.min(24, learnt.wrong));
    for (const tile of tiles) {
      const i = Number(tile.dataset.index);
      const predicted = ownPrediction(net, trained, featuresAsFloat(held, i, 1));
      expect(predicted).not.toBe(held.y[i]);
      expect(tile.querySelector('figcaption')!.textContent).toBe(`predicted ${predicted}, is ${held.y[i]}`);
    }

    // A strip with room for everything shows every mistake.
    const all = mountWrongDigits(host, { test: held, max: held.count });
    mounted.push(all);
    expect(all.update({ net, params: trained })).toEqual({ wrong: learnt.wrong, shown: learnt.wrong });
    expect(all.update(null)).toEqual({ wrong: 0, shown: 0 });
  });
});

describe('try the model follows the model', () => {
  test('class names label the bars and the guess when the dataset has them', () => {
    const { p, host } = panel(() => ({ net: cnn, params: trainedCnn, version: 1, labels: { classNames: FASHION } }));
    expect(host.querySelector<HTMLElement>('.try-model')!.dataset.mode).toBe('pad');
    expect([...host.querySelectorAll('.try-bar .try-digit')].map((e) => e.textContent)).toEqual(FASHION);
    expect(host.querySelector('.try-top')!.textContent).toBe('Draw something');
    p.setDigit(featuresAsFloat(held, 0, 1));
    const shown = p.predict()!;
    expect(shown.name).toBe(FASHION[shown.label]);
    expect(host.querySelector('.try-top')!.textContent).toContain(FASHION[shown.label]);
    expect(host.querySelector('.try-bar.try-best .try-digit')!.textContent).toBe(FASHION[shown.label]);
    expect(host.querySelector('canvas')!.getAttribute('aria-label')).toContain('Ankle boot');
  });

  test('a language model writes a continuation of the prompt from its own alphabet, and it follows the parameters', async () => {
    const vocab = [...'abcdefghijklmnopqrstuvwxyz .,'];
    const context = 16;
    const lm: NetInfo = {
      model: null,
      layers: expandLayers([{ kind: 'embedding', vocab: vocab.length, dim: 16 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: vocab.length }] as LayerConfig[]),
      inputShape: [context],
    };
    const description = describeModel(lm.layers, lm.inputShape);
    expect(description.outShape).toEqual([context, vocab.length]);
    // Two versions of one model: PyTorch's initialisation from two seeds.
    const first = initModelParams(description, 1);
    const second = initModelParams(description, 2);
    let source: TryModelSource = { net: lm, params: first, version: 1, labels: { vocab } };
    const { p, host } = panel(() => source, { resampleEveryMs: 0 });
    expect(host.querySelector<HTMLElement>('.try-model')!.dataset.mode).toBe('text');
    expect(host.querySelector<HTMLElement>('.try-pad')!.hidden).toBe(true);
    expect(p.predict()).toBeNull();

    // Longer than the context: the model reads the last 16 characters at each step.
    const out = await p.generate('Call me Ishmael, some years ago');
    expect(out).not.toBeNull();
    expect(out!.prompt).toBe('all me shmael, some years ago');
    expect(out!.dropped).toEqual(['C', 'I']);
    expect(host.querySelector('.try-note')!.textContent).toContain('"C" "I"');
    expect(out!.text).toHaveLength(120);
    expect([...out!.text].every((c) => vocab.includes(c))).toBe(true);
    expect(host.querySelector('.try-given')!.textContent).toBe(out!.prompt);
    expect(host.querySelector('.try-sampled')!.textContent).toBe(out!.text);
    expect(host.querySelector<HTMLElement>('.try-continuation')!.dataset.done).toBe('true');

    // Seeded by the version: the same parameters and prompt write the same text.
    expect((await p.generate())!.text).toBe(out!.text);

    // New parameters: another text, re-sampled by redraw().
    source = { net: lm, params: second, version: 2, labels: { vocab } };
    p.redraw();
    await expect.poll(() => host.querySelector<HTMLElement>('.try-continuation')!.dataset.version, { timeout: 10_000 }).toBe('2');
    await expect.poll(() => host.querySelector<HTMLElement>('.try-continuation')!.dataset.done, { timeout: 10_000 }).toBe('true');
    const resampled = host.querySelector('.try-sampled')!.textContent!;
    expect(resampled).toHaveLength(120);
    expect(resampled).not.toBe(out!.text);
    expect((await p.generate())!.text).toBe(resampled);

    // A short prompt (shorter than the context) and an empty one still write.
    expect((await p.generate('a'))!.text).toHaveLength(120);
    expect((await p.generate(''))!.text).toHaveLength(120);
  });

  test('a model that is neither gets a line saying why, and the strip skips a text', () => {
    const table: NetInfo = { model: { layers: [4, 8, 3], activation: 'relu' }, layers: mlpLayers([4, 8, 3], 'relu'), inputShape: [4] };
    const params = initModelParams(describeModel(table.layers, table.inputShape), 1);
    const { p, host } = panel(() => ({ net: table, params, version: 1 }));
    expect(host.querySelector<HTMLElement>('.try-model')!.dataset.mode).toBe('none');
    expect(host.querySelector<HTMLElement>('.try-none')!.hidden).toBe(false);
    expect(host.querySelector('.try-none')!.textContent).toMatch(/not an image/);
    expect(p.predict()).toBeNull();

    const windows: Dataset = { count: 2, features: 4, classes: 5, x: new Uint8Array([0, 1, 2, 3, 1, 2, 3, 4]), y: new Uint8Array(8), labelWidth: 4, inputs: 'tokens' };
    const stripHost = document.createElement('div');
    document.body.append(stripHost);
    const strip = mountWrongDigits(stripHost, { test: windows });
    mounted.push({ destroy: () => (strip.destroy(), stripHost.remove()) });
    expect(strip.update({ net: table, params })).toEqual({ wrong: 0, shown: 0 });
    expect(stripHost.querySelectorAll('.wrong-digit')).toHaveLength(0);
    expect(stripHost.textContent).toMatch(/not images/);
  });
});

describe('wrong examples', () => {
  test('captions name the classes when the dataset has names; `evaluate` limits the examples run', () => {
    const host = document.createElement('div');
    document.body.append(host);
    const strip = mountWrongDigits(host, { test: held, classNames: FASHION, max: 5, evaluate: 1000 });
    mounted.push({ destroy: () => (strip.destroy(), host.remove()) });
    expect(strip.update({ net: cnn, params: trainedCnn }).shown).toBe(5);
    for (const tile of host.querySelectorAll<HTMLElement>('.wrong-digit')) {
      const i = Number(tile.dataset.index);
      const predicted = ownPrediction(cnn, trainedCnn, featuresAsFloat(held, i, 1));
      expect(tile.querySelector('figcaption')!.textContent).toBe(`predicted ${FASHION[predicted]}, is ${FASHION[held.y[i]]}`);
    }
    expect(host.querySelector('.wrong-count')!.textContent).toMatch(/^\d+ of 1000 test images wrong/);
  });
});
