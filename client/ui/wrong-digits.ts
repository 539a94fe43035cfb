// The classroom board's strip of held-out examples the current model gets wrong: it evaluates any
// image classifier on the test split with the shared CPU layer kernels (client/ui/page-model.ts)
// and shows up to `max` of its mistakes, each with what the model said and what the image is, by
// class name when the dataset has them. The strip shrinks as the run learns. A split that is not
// images (a text's windows, a table) gets one line and no strip. Getting the parameters and the
// test split belongs to the host, which calls update() with each version.
//
// @example
//   const strip = mountWrongDigits(document.getElementById('wrong')!, { test: await fetchDatasetSplit('mnist', 'test'), classNames });
//   const { wrong } = strip.update({ net: run.net, params });
import { featuresAsFloat, inputCodingOf, labelWidthOf, type Dataset } from '../../shared/dataset.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import { PageModel } from './page-model.ts';
// A stylesheet of the page's own origin, not an injected <style>: the pages' CSP allows no inline styles.
import './wrong-digits.css';

export interface WrongDigitsOptions {
  /** The held-out split: images, one label each ([1, 28, 28] MNIST, or any [C, H, W] with C 1 or 3). */
  test: Dataset;
  /** Names of the classes, index = label (Fashion-MNIST's); unset: the labels as numbers. */
  classNames?: string[];
  /** Most examples shown at once (default 24). */
  max?: number;
  /** Evaluates only the split's first `evaluate` examples (default all): the evaluation runs on the page's thread. */
  evaluate?: number;
}

export interface WrongDigitsResult {
  /** Test examples the model gets wrong (0 when there is no model). */
  wrong: number;
  /** How many of them the strip shows (at most max). */
  shown: number;
}

export interface WrongDigitsStrip {
  /** Evaluates `model` on the test split and redraws the strip; null empties it. */
  update(model: { net: NetInfo; params: Float32Array } | null): WrongDigitsResult;
  /** Removes the strip from the page. */
  destroy(): void;
}

/** Channels and side of the split's images, or null when its examples are not square images. */
export function imageShapeOf(ds: Dataset): { channels: number; side: number } | null {
  if (inputCodingOf(ds) !== 'scaled' || labelWidthOf(ds) !== 1) return null;
  const shape = ds.shape ?? [ds.features];
  if (shape.length === 3 && shape[1] === shape[2] && (shape[0] === 1 || shape[0] === 3)) return { channels: shape[0], side: shape[1] };
  const side = Math.round(Math.sqrt(ds.features));
  if (shape.length === 1 && side >= 8 && side * side === ds.features) return { channels: 1, side };
  return null;
}

/** Rows per forward pass: big enough to amortise the layer loops, small enough for the scratch. */
const EVAL_BATCH = 256;



/** One test digit's tile; the canvas is painted once, the caption follows the prediction. */
interface Tile {
  figure: HTMLElement;
  caption: HTMLElement;
}

export function mountWrongDigits(container: HTMLElement, opts: WrongDigitsOptions): WrongDigitsStrip {
  const { test } = opts;
  const max = opts.max ?? 24;
  const total = Math.min(opts.evaluate ?? test.count, test.count);
  if (!Number.isInteger(max) || max < 0) throw new RangeError(`mountWrongDigits: max must be a non-negative integer, got ${max}`);
  const image = imageShapeOf(test);
  const names = opts.classNames && opts.classNames.length === test.classes ? opts.classNames : null;
  const nameOf = (label: number) => (names ? names[label] : String(label));

  const root = document.createElement('div');
  root.className = names ? 'wrong-digits wrong-named' : 'wrong-digits';
  const count = document.createElement('p');
  count.className = 'wrong-count';
  const strip = document.createElement('div');
  strip.className = 'wrong-strip';
  root.append(count, strip);
  container.append(root);

  if (!image) {
    count.textContent = 'This run’s examples are not images: there is no strip of mistakes to show.';
    return {
      update: () => ({ wrong: 0, shown: 0 }),
      destroy: () => root.remove(),
    };
  }
  const { channels, side } = image;
  const pixels = side * side;
  const noun = names ? 'test images' : 'test digits';

  const x = featuresAsFloat(test);
  const tiles = new Map<number, Tile>();
  const model = new PageModel();

  function tile(index: number): Tile {
    const known = tiles.get(index);
    if (known) return known;
    const figure = document.createElement('figure');
    figure.className = 'wrong-digit';
    figure.dataset.index = String(index);
    figure.dataset.label = String(test.y[index]);
    const canvas = document.createElement('canvas');
    canvas.width = side;
    canvas.height = side;
    const ctx = canvas.getContext('2d');
    if (ctx) {
      const picture = ctx.createImageData(side, side);
      const base = index * test.features;
      for (let i = 0; i < pixels; i++) {
        // Channels first ([C, H, W]); one channel is grey.
        const r = test.x[base + i];
        const g = channels === 3 ? test.x[base + pixels + i] : r;
        const b = channels === 3 ? test.x[base + 2 * pixels + i] : r;
        picture.data.set([r, g, b, 255], 4 * i);
      }
      ctx.putImageData(picture, 0, 0);
    }
    const caption = document.createElement('figcaption');
    figure.append(canvas, caption);
    const made = { figure, caption };
    tiles.set(index, made);
    return made;
  }

  function update(source: { net: NetInfo; params: Float32Array } | null): WrongDigitsResult {
    if (!source) {
      strip.replaceChildren();
      tiles.clear();
      count.textContent = 'Waiting for the model…';
      return { wrong: 0, shown: 0 };
    }
    const description = model.describe(source.net);
    const inputs = description.inShape.reduce((a, b) => a * b, 1);
    const classes = test.classes;
    if (inputs !== test.features || description.outShape.length !== 1 || description.outShape[0] !== classes) {
      throw new RangeError(
        `mountWrongDigits: the model maps [${description.inShape.join(', ')}] to [${description.outShape.join(', ')}], the test split has ${test.features} features and ${classes} classes`,
      );
    }
    const logits = new Float32Array(total * classes);
    for (let s = 0; s < total; s += EVAL_BATCH) {
      const n = Math.min(EVAL_BATCH, total - s);
      logits.set(model.forward(source.net, source.params, x.subarray(s * test.features, (s + n) * test.features), n), s * classes);
    }

    // The first `max` mistakes in test-set order: an example keeps its place while it stays wrong,
    // so the strip visibly loses tiles as the model learns instead of reshuffling.
    const shown: { index: number; predicted: number }[] = [];
    let wrong = 0;
    for (let i = 0; i < total; i++) {
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
        t.caption.textContent = `predicted ${nameOf(predicted)}, is ${nameOf(test.y[index])}`;
        return t.figure;
      }),
    );
    const accuracy = total > 0 ? (100 * (total - wrong)) / total : 0;
    count.textContent =
      `${wrong} of ${total} ${noun} wrong (${accuracy.toFixed(1)}% right)` + (wrong > shown.length ? `, showing ${shown.length}` : '');
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
