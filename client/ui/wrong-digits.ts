// The classroom board's strip of test digits the current model gets wrong: it evaluates the model
// on the held-out split with the cpu backend's MLP and shows up to `max` of its mistakes, each
// with what the model said and what the digit is. The strip shrinks as the run learns. Getting
// the parameters and the test split belongs to the host, which calls update() with each version.
//
// @example
//   const strip = mountWrongDigits(document.getElementById('wrong')!, { test: await fetchDatasetSplit('mnist', 'test') });
//   const { wrong } = strip.update({ spec: run.model, params });
import { CpuMlp } from '../cpu/mlp-cpu.ts';
import { featuresAsFloat, type Dataset } from '../../shared/dataset.ts';
import type { MlpSpec } from '../../shared/model.ts';

export interface WrongDigitsOptions {
  /** The held-out split, MNIST-shaped (784 features, 28x28). */
  test: Dataset;
  /** Most digits shown at once (default 24). */
  max?: number;
}

export interface WrongDigitsResult {
  /** Test digits the model gets wrong (0 when there is no model). */
  wrong: number;
  /** How many of them the strip shows (at most max). */
  shown: number;
}

export interface WrongDigitsStrip {
  /** Evaluates `model` on the test split and redraws the strip; null empties it. */
  update(model: { spec: MlpSpec; params: Float32Array } | null): WrongDigitsResult;
  /** Removes the strip from the page. */
  destroy(): void;
}

const SIDE = 28;
/** Rows per forward pass: big enough to amortise the layer loops, small enough for the scratch. */
const EVAL_BATCH = 256;
const STYLE_ID = 'crowdtrain-wrong-digits-style';

const CSS = `
.wrong-digits { display: flex; flex-direction: column; gap: 0.5rem; }
.wrong-count { margin: 0; color: var(--muted, #888); font-variant-numeric: tabular-nums; }
.wrong-strip { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0; padding: 0; }
.wrong-digit { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 0.15rem; }
.wrong-digit canvas { width: 56px; height: 56px; image-rendering: pixelated; background: #000; border-radius: 4px; }
.wrong-digit figcaption { font-size: 0.75em; color: var(--muted, #888); white-space: nowrap; font-variant-numeric: tabular-nums; }
`;

function injectStyle(): void {
  if (document.getElementById(STYLE_ID)) return;
  const style = document.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  document.head.append(style);
}

/** One test digit's tile; the canvas is painted once, the caption follows the prediction. */
interface Tile {
  figure: HTMLElement;
  caption: HTMLElement;
}

export function mountWrongDigits(container: HTMLElement, opts: WrongDigitsOptions): WrongDigitsStrip {
  const { test } = opts;
  const max = opts.max ?? 24;
  if (test.features !== SIDE * SIDE) throw new RangeError(`mountWrongDigits: the test split has ${test.features} features, expected 28x28 = 784`);
  if (!Number.isInteger(max) || max < 0) throw new RangeError(`mountWrongDigits: max must be a non-negative integer, got ${max}`);
  injectStyle();

  const root = document.createElement('div');
  root.className = 'wrong-digits';
  const count = document.createElement('p');
  count.className = 'wrong-count';
  const strip = document.createElement('div');
  strip.className = 'wrong-strip';
  root.append(count, strip);
  container.append(root);

  const x = featuresAsFloat(test);
  const tiles = new Map<number, Tile>();
  let mlp: CpuMlp | undefined;
  let specKey = '';

  function tile(index: number): Tile {
    const known = tiles.get(index);
    if (known) return known;
    const figure = document.createElement('figure');
    figure.className = 'wrong-digit';
    figure.dataset.index = String(index);
    figure.dataset.label = String(test.y[index]);
    const canvas = document.createElement('canvas');
    canvas.width = SIDE;
    canvas.height = SIDE;
    const ctx = canvas.getContext('2d');
    if (ctx) {
      const image = ctx.createImageData(SIDE, SIDE);
      for (let i = 0; i < SIDE * SIDE; i++) {
        const v = test.x[index * SIDE * SIDE + i];
        image.data.set([v, v, v, 255], 4 * i);
      }
      ctx.putImageData(image, 0, 0);
    }
    const caption = document.createElement('figcaption');
    figure.append(canvas, caption);
    const made = { figure, caption };
    tiles.set(index, made);
    return made;
  }

  function update(model: { spec: MlpSpec; params: Float32Array } | null): WrongDigitsResult {
    if (!model) {
      strip.replaceChildren();
      tiles.clear();
      count.textContent = 'Waiting for the model…';
      return { wrong: 0, shown: 0 };
    }
    const { layers } = model.spec;
    if (layers[0] !== test.features || layers[layers.length - 1] !== test.classes) {
      throw new RangeError(`mountWrongDigits: the model maps ${layers[0]} inputs to ${layers[layers.length - 1]} classes, the test split has ${test.features} and ${test.classes}`);
    }
    const key = JSON.stringify(model.spec);
    if (!mlp || key !== specKey) {
      mlp = new CpuMlp(model.spec, EVAL_BATCH);
      specKey = key;
    }
    mlp.setParams(model.params);
    const logits = mlp.predict(x, test.count);

    // The first `max` mistakes in test-set order: a digit keeps its place while it stays wrong,
    // so the strip visibly loses tiles as the model learns instead of reshuffling.
    const shown: { index: number; predicted: number }[] = [];
    let wrong = 0;
    const classes = test.classes;
    for (let i = 0; i < test.count; i++) {
      let predicted = 0;
      for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + predicted]) predicted = c;
      if (predicted === test.y[i]) continue;
      wrong++;
      if (shown.length < max) shown.push({ index: i, predicted });
    }

    const keep = new Set(shown.map((s) => s.index));
    for (const index of tiles.keys()) if (!keep.has(index)) tiles.delete(index);
    strip.replaceChildren(
      ...shown.map(({ index, predicted }) => {
        const t = tile(index);
        t.figure.dataset.predicted = String(predicted);
        t.caption.textContent = `predicted ${predicted}, is ${test.y[index]}`;
        return t.figure;
      }),
    );
    const accuracy = test.count > 0 ? (100 * (test.count - wrong)) / test.count : 0;
    count.textContent =
      `${wrong} of ${test.count} test digits wrong (${accuracy.toFixed(1)}% right)` + (wrong > shown.length ? `, showing ${shown.length}` : '');
    root.dataset.wrong = String(wrong);
    return { wrong, shown: shown.length };
  }

  count.textContent = 'Waiting for the model…';
  return {
    update,
    destroy() {
      tiles.clear();
      root.remove();
    },
  };
}
