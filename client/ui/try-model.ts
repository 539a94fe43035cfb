// The "try the model" panel of the classroom board and the contributor page: draw a digit with a
// mouse, finger or pen and see the current model's ten class probabilities. The drawing is read
// back from the canvas and processed as the MNIST digits were (shared/preprocess.ts), then run
// through the cpu backend's MLP on this page. Fetching parameters belongs to the host, which
// hands them in through getModel and calls redraw() when a new version arrives.
//
// @example
//   const panel = mountTryModel(document.getElementById('try')!, {
//     getModel: () => (latest ? { spec: run.model, params: latest.params, version: latest.version } : null),
//   });
//   socket.on('params', () => panel.redraw());
import { CpuMlp } from '../cpu/mlp-cpu.ts';
import type { MlpSpec } from '../../shared/model.ts';
import { MNIST_SIDE, mnistFromDrawing } from '../../shared/preprocess.ts';

export interface TryModelSource {
  spec: MlpSpec;
  /** Dense layout of shared/model.ts, f32[N]. */
  params: Float32Array;
  /** Changes whenever params do; the panel copies params into its MLP only when it changes. */
  version: number;
}

export interface TryModelOptions {
  /** The latest model, or null while there is none yet. Called on every recompute. */
  getModel: () => TryModelSource | null;
}

export interface TryModelPrediction {
  /** Softmax of the logits, one per class 0..9. */
  probabilities: number[];
  /** The most probable class. */
  label: number;
}

export interface TryModelPanel {
  /** Recomputes the probabilities with whatever getModel returns now (call it on new parameters). */
  redraw(): void;
  /** Paints a 28x28 digit (f32[784] in [0, 1], row-major) onto the canvas, each pixel a 10x10 block, and recomputes. */
  setDigit(pixels: Float32Array): void;
  /** Recomputes and returns the prediction for the drawing, or null when the canvas is empty or there is no model. */
  predict(): TryModelPrediction | null;
  /** Wipes the drawing. */
  clear(): void;
  /** Removes the panel and its listeners from the page. */
  destroy(): void;
}

/** Canvas side in pixels: 10 per MNIST pixel, so that setDigit paints whole blocks. */
export const TRY_CANVAS_SIDE = 280;
const BLOCK = TRY_CANVAS_SIDE / MNIST_SIDE;
/**
 * Stroke width in canvas pixels. A digit drawn to fill most of the pad is scaled by about 0.1, so
 * this gives strokes 2 to 3 MNIST pixels wide, like the pen strokes in the training data.
 */
const STROKE_WIDTH = 22;
const CLASSES = 10;
const STYLE_ID = 'crowdtrain-try-model-style';

const CSS = `
.try-model { display: flex; flex-wrap: wrap; gap: 1rem 1.5rem; align-items: flex-start; }
.try-pad { display: flex; flex-direction: column; gap: 0.5rem; align-items: stretch; }
.try-canvas { width: 280px; max-width: 100%; aspect-ratio: 1; background: #000; border-radius: 8px; touch-action: none; cursor: crosshair; display: block; }
.try-side { flex: 1 1 12rem; min-width: 12rem; }
.try-top { font-size: 1.4em; font-weight: 600; margin: 0 0 0.5rem; font-variant-numeric: tabular-nums; }
.try-bars { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.25rem; }
.try-bar { display: grid; grid-template-columns: 1.4em 1fr 3.2em; gap: 0.5rem; align-items: center; font-variant-numeric: tabular-nums; }
.try-digit { font-weight: 600; text-align: center; }
.try-track { height: 0.9em; background: color-mix(in srgb, var(--muted, #888) 25%, transparent); border-radius: 4px; overflow: hidden; }
.try-fill { height: 100%; width: 0; background: var(--muted, #888); transition: width 0.15s ease-out; }
.try-value { text-align: right; color: var(--muted, #888); font-size: 0.9em; }
.try-bar.try-best .try-fill { background: var(--accent, #2f6fed); }
.try-bar.try-best .try-digit, .try-bar.try-best .try-value { color: var(--accent, #2f6fed); }
`;

function injectStyle(): void {
  if (document.getElementById(STYLE_ID)) return;
  const style = document.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  document.head.append(style);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Softmax of logits[offset, offset + n) in float64. */
function softmax(logits: Float32Array, offset: number, n: number): number[] {
  let max = -Infinity;
  for (let c = 0; c < n; c++) max = Math.max(max, logits[offset + c]);
  const exps = Array.from({ length: n }, (_, c) => Math.exp(logits[offset + c] - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * Keeps one CpuMlp for the latest model: rebuilt when the spec changes, refilled when the
 * version does. Returns null for a model that does not map 784 pixels to 10 classes.
 */
class ModelCache {
  private mlp: CpuMlp | undefined;
  private specKey = '';
  private version: number | undefined;

  load(source: TryModelSource): CpuMlp | null {
    const { layers } = source.spec;
    if (layers[0] !== MNIST_SIDE * MNIST_SIDE || layers[layers.length - 1] !== CLASSES) return null;
    const key = JSON.stringify(source.spec);
    if (!this.mlp || key !== this.specKey) {
      this.mlp = new CpuMlp(source.spec, 1);
      this.specKey = key;
      this.version = undefined;
    }
    if (this.version !== source.version) {
      this.mlp.setParams(source.params);
      this.version = source.version;
    }
    return this.mlp;
  }
}

export function mountTryModel(container: HTMLElement, opts: TryModelOptions): TryModelPanel {
  injectStyle();
  const root = el('div', 'try-model');
  const pad = el('div', 'try-pad');
  const canvas = el('canvas', 'try-canvas');
  canvas.width = TRY_CANVAS_SIDE;
  canvas.height = TRY_CANVAS_SIDE;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Drawing pad: draw a digit from 0 to 9');
  const clearButton = el('button', 'try-clear secondary', 'Clear');
  clearButton.type = 'button';
  pad.append(canvas, clearButton);

  const side = el('div', 'try-side');
  const top = el('p', 'try-top');
  top.setAttribute('aria-live', 'polite');
  const bars = el('ol', 'try-bars');
  const rows = Array.from({ length: CLASSES }, (_, digit) => {
    const row = el('li', 'try-bar');
    row.dataset.digit = String(digit);
    const track = el('span', 'try-track');
    const fill = el('span', 'try-fill');
    fill.style.display = 'block';
    track.append(fill);
    const value = el('span', 'try-value', '');
    row.append(el('span', 'try-digit', String(digit)), track, value);
    bars.append(row);
    return { row, fill, value };
  });
  side.append(top, bars);
  root.append(pad, side);
  container.append(root);

  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('mountTryModel: this browser gave no 2D canvas context');
  const cache = new ModelCache();

  function drawingInput(): Float32Array | null {
    const rgba = ctx!.getImageData(0, 0, TRY_CANVAS_SIDE, TRY_CANVAS_SIDE).data;
    const alpha = new Uint8ClampedArray(TRY_CANVAS_SIDE * TRY_CANVAS_SIDE);
    let ink = false;
    for (let i = 0; i < alpha.length; i++) {
      alpha[i] = rgba[4 * i + 3];
      if (alpha[i] !== 0) ink = true;
    }
    if (!ink) return null;
    const x = mnistFromDrawing(alpha, TRY_CANVAS_SIDE, TRY_CANVAS_SIDE);
    return x.some((v) => v > 0) ? x : null;
  }

  function render(prediction: TryModelPrediction | null, message: string): void {
    top.textContent = message;
    if (prediction) top.dataset.label = String(prediction.label);
    else delete top.dataset.label;
    rows.forEach(({ row, fill, value }, digit) => {
      const p = prediction?.probabilities[digit];
      row.classList.toggle('try-best', prediction?.label === digit);
      if (p === undefined) {
        delete row.dataset.probability;
        fill.style.width = '0';
        value.textContent = '';
      } else {
        row.dataset.probability = String(p);
        fill.style.width = `${(100 * p).toFixed(1)}%`;
        value.textContent = `${Math.round(100 * p)}%`;
      }
    });
  }

  function predict(): TryModelPrediction | null {
    const source = opts.getModel();
    const mlp = source ? cache.load(source) : null;
    if (!source) {
      render(null, 'Waiting for the model…');
      return null;
    }
    if (!mlp) {
      render(null, 'This model does not read 28×28 digits');
      return null;
    }
    const x = drawingInput();
    if (!x) {
      render(null, 'Draw a digit');
      return null;
    }
    const probabilities = softmax(mlp.predict(x, 1), 0, CLASSES);
    let label = 0;
    for (let c = 1; c < CLASSES; c++) if (probabilities[c] > probabilities[label]) label = c;
    const prediction = { probabilities, label };
    render(prediction, `It looks like a ${label} (${Math.round(100 * probabilities[label])}%)`);
    return prediction;
  }

  // Strokes: one open path per pointer (two fingers draw two lines), a round dot on a tap.
  const last = new Map<number, { x: number; y: number }>();
  let frame = 0;
  const toCanvas = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    return {
      x: r.width > 0 ? ((e.clientX - r.left) * TRY_CANVAS_SIDE) / r.width : e.clientX,
      y: r.height > 0 ? ((e.clientY - r.top) * TRY_CANVAS_SIDE) / r.height : e.clientY,
    };
  };
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  const segment = (from: { x: number; y: number }, to: { x: number; y: number }) => {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = STROKE_WIDTH;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  };
  // While a stroke is under way, recompute at most once a frame so the bars follow the pen.
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      predict();
    });
  };

  const onDown = (e: PointerEvent) => {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();
    try {
      canvas.setPointerCapture(e.pointerId);
    } catch {
      // A pointer the browser does not know (a synthetic event) cannot be captured; drawing still works.
    }
    const p = toCanvas(e);
    last.set(e.pointerId, p);
    segment(p, p);
    schedule();
  };
  const onMove = (e: PointerEvent) => {
    const from = last.get(e.pointerId);
    if (!from) return;
    e.preventDefault();
    const to = toCanvas(e);
    segment(from, to);
    last.set(e.pointerId, to);
    schedule();
  };
  const onUp = (e: PointerEvent) => {
    if (!last.delete(e.pointerId)) return;
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    predict();
  };
  const onClear = () => clear();
  canvas.addEventListener('pointerdown', onDown);
  canvas.addEventListener('pointermove', onMove);
  canvas.addEventListener('pointerup', onUp);
  canvas.addEventListener('pointercancel', onUp);
  clearButton.addEventListener('click', onClear);

  function clear(): void {
    last.clear();
    ctx!.clearRect(0, 0, TRY_CANVAS_SIDE, TRY_CANVAS_SIDE);
    predict();
  }

  function setDigit(pixels: Float32Array): void {
    if (pixels.length !== MNIST_SIDE * MNIST_SIDE) throw new RangeError(`setDigit: expected ${MNIST_SIDE * MNIST_SIDE} pixels (28x28), got ${pixels.length}`);
    const image = ctx!.createImageData(TRY_CANVAS_SIDE, TRY_CANVAS_SIDE);
    const data = image.data;
    for (let y = 0; y < TRY_CANVAS_SIDE; y++) {
      for (let x = 0; x < TRY_CANVAS_SIDE; x++) {
        const i = 4 * (y * TRY_CANVAS_SIDE + x);
        data[i] = data[i + 1] = data[i + 2] = 255;
        data[i + 3] = Math.round(255 * Math.min(1, Math.max(0, pixels[Math.floor(y / BLOCK) * MNIST_SIDE + Math.floor(x / BLOCK)])));
      }
    }
    last.clear();
    ctx!.putImageData(image, 0, 0);
    predict();
  }

  predict();
  return {
    redraw: () => void predict(),
    setDigit,
    predict,
    clear,
    destroy() {
      if (frame) cancelAnimationFrame(frame);
      canvas.removeEventListener('pointerdown', onDown);
      canvas.removeEventListener('pointermove', onMove);
      canvas.removeEventListener('pointerup', onUp);
      canvas.removeEventListener('pointercancel', onUp);
      clearButton.removeEventListener('click', onClear);
      root.remove();
    },
  };
}
