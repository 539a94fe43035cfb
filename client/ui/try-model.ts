// The "try the model" panel of the classroom board and the contributor page; what it offers follows
// the model. A classifier of 28×28 one-channel images gets a drawing pad (mouse, finger or pen)
// and its class probabilities, named by the dataset's class names or as digits; the drawing is
// processed as the MNIST digits were (shared/preprocess.ts). A character language model gets a
// prompt box and a sampled continuation, re-sampled when new parameters arrive. Any other model
// gets one line saying why there is nothing to try. Models run on this tab's CPU with the shared
// layer kernels (client/ui/page-model.ts). Fetching parameters belongs to the host, which hands
// them in through getModel and calls redraw() when a new version arrives.
//
// @example
//   const panel = mountTryModel(document.getElementById('try')!, {
//     getModel: () => (latest ? { net: run.net, labels: run.dataset, params: latest.params, version: latest.version } : null),
//   });
//   socket.on('params', () => panel.redraw());
import { createRng } from '../../shared/rng.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import { MNIST_SIDE, mnistFromDrawing } from '../../shared/preprocess.ts';
import { modelUse, PageModel, softmax, type ModelLabels, type ModelUse } from './page-model.ts';
// A stylesheet of the page's own origin, not an injected <style>: the pages' CSP allows no inline styles.
import './try-model.css';

export interface TryModelSource {
  /** The run's model (RunSummary.net, or RunInfo's model, layers and inputShape). */
  net: NetInfo;
  /** The model's flat parameter vector, f32[paramCount]. */
  params: Float32Array;
  /** Changes whenever params do. */
  version: number;
  /** The dataset's class names or a text's characters (RunSummary.dataset). */
  labels?: ModelLabels;
}

export interface TryModelOptions {
  /** The latest model, or null while there is none yet. Called on every recompute. */
  getModel: () => TryModelSource | null;
  /** Characters a language model writes after the prompt (default 120). */
  continuationLength?: number;
  /** Sampling temperature of a language model (default 0.8). */
  temperature?: number;
  /** Shortest time between two continuations re-sampled because new parameters came (default 3000 ms). */
  resampleEveryMs?: number;
  /** Called when what the panel offers changes: the host can retitle its section. */
  onUse?: (use: ModelUse) => void;
}

export interface TryModelPrediction {
  /** Softmax of the logits, one per class. */
  probabilities: number[];
  /** The most probable class. */
  label: number;
  /** Its name: the dataset's class name, or the digit. */
  name: string;
}

export interface TryModelText {
  /** The prompt as the model saw it (characters outside its vocabulary left out). */
  prompt: string;
  /** The sampled continuation. */
  text: string;
  /** Characters of the typed prompt the model does not know, each once. */
  dropped: string[];
  /** The parameters' version it was sampled with. */
  version: number;
}

export interface TryModelPanel {
  /** Recomputes with whatever getModel returns now (call it on new parameters). */
  redraw(): void;
  /** Paints a 28x28 image (f32[784] in [0, 1], row-major) onto the canvas, each pixel a 10x10 block, and recomputes. */
  setDigit(pixels: Float32Array): void;
  /** Recomputes and returns the prediction for the drawing, or null when the canvas is empty or there is no image model. */
  predict(): TryModelPrediction | null;
  /**
   * Samples a language model's continuation of `prompt` (default: the prompt box's text; a given
   * prompt is put in the box) and shows it; null when the model is not a language model or a
   * newer sampling superseded this one. Seeded by the version, so the same parameters and prompt
   * give the same text.
   */
  generate(prompt?: string): Promise<TryModelText | null>;
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
/** A continuation is sampled in slices of about this many milliseconds, so the page stays responsive. */
const SLICE_MS = 12;
/** After typing, the continuation is re-sampled once the keys have been still this long. */
const TYPING_MS = 350;



function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** What the panel shows for a model: the pad, the prompt box, or a line saying why neither. */
type Mode = { kind: 'pad'; classes: number; names: string[] | null } | { kind: 'text'; context: number; vocabSize: number; vocab: string[] } | { kind: 'none'; why: string };

function modeOf(use: ModelUse, labels: ModelLabels | undefined): Mode {
  if (use.kind === 'text') return use;
  if (use.kind === 'other') return { kind: 'none', why: use.why };
  if (use.side !== MNIST_SIDE || use.channels !== 1) {
    return { kind: 'none', why: `The drawing pad serves models of 28×28 one-channel images; this one reads ${use.channels}×${use.side}×${use.side}.` };
  }
  const names = labels?.classNames && labels.classNames.length === use.classes ? labels.classNames : null;
  return { kind: 'pad', classes: use.classes, names };
}

/** A typed prompt as token ids of `vocab`; characters it does not hold are left out and listed once each. */
export function encodePrompt(text: string, vocab: readonly string[]): { ids: number[]; dropped: string[] } {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const ids: number[] = [];
  const dropped = new Set<string>();
  for (const ch of text) {
    const id = index.get(ch);
    if (id === undefined) dropped.add(ch);
    else ids.push(id);
  }
  return { ids, dropped: [...dropped] };
}

/** A 32-bit seed from the parameters' version and the prompt: the same pair samples the same text. */
function seedOf(version: number, prompt: string): number {
  let h = (0x811c9dc5 ^ version) >>> 0;
  for (let i = 0; i < prompt.length; i++) h = Math.imul(h ^ prompt.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Index drawn from probabilities p (they sum to 1) with u uniform in [0, 1). */
function draw(p: readonly number[], u: number): number {
  let acc = 0;
  for (let i = 0; i < p.length; i++) {
    acc += p[i];
    if (u < acc) return i;
  }
  return p.length - 1;
}

const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export function mountTryModel(container: HTMLElement, opts: TryModelOptions): TryModelPanel {
  const length = opts.continuationLength ?? 120;
  const temperature = opts.temperature ?? 0.8;
  const resampleEveryMs = opts.resampleEveryMs ?? 3000;
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
  side.append(top, bars);

  const textBox = el('div', 'try-text');
  const promptLabel = el('label', '', 'Start a sentence');
  const promptInput = el('input', 'try-prompt');
  promptInput.type = 'text';
  promptInput.autocomplete = 'off';
  promptInput.spellcheck = false;
  promptInput.value = 'The ';
  promptLabel.append(promptInput);
  const continuation = el('p', 'try-continuation');
  continuation.setAttribute('aria-live', 'polite');
  const given = el('span', 'try-given');
  const sampled = el('span', 'try-sampled');
  continuation.append(given, sampled);
  const note = el('p', 'try-note');
  textBox.append(promptLabel, continuation, note);

  const none = el('p', 'try-none');
  root.append(pad, side, textBox, none);
  container.append(root);

  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('mountTryModel: this browser gave no 2D canvas context');
  const model = new PageModel();

  // ---- what the panel shows follows the model ----

  let rows: { row: HTMLElement; fill: HTMLElement; value: HTMLElement }[] = [];
  let barsKey = '';
  let modeKey = '';
  let mode: Mode = { kind: 'pad', classes: 10, names: null };
  let modeSource: { net: NetInfo; labels: ModelLabels | undefined } | undefined;

  function buildBars(classes: number, names: string[] | null): void {
    const key = JSON.stringify([classes, names]);
    if (key === barsKey) return;
    barsKey = key;
    bars.classList.toggle('try-named', names !== null);
    rows = Array.from({ length: classes }, (_, c) => {
      const row = el('li', 'try-bar');
      row.dataset.digit = String(c);
      const track = el('span', 'try-track');
      const fill = el('span', 'try-fill');
      fill.style.display = 'block';
      track.append(fill);
      const value = el('span', 'try-value', '');
      row.append(el('span', 'try-digit', names ? names[c] : String(c)), track, value);
      return { row, fill, value };
    });
    bars.replaceChildren(...rows.map((r) => r.row));
  }
  buildBars(10, null);

  /** The mode for the current source (described once per net); null while there is no model. */
  function currentMode(source: TryModelSource | null): Mode | null {
    if (!source) return null;
    if (modeSource?.net !== source.net || modeSource.labels !== source.labels) {
      let next: Mode;
      let use: ModelUse;
      try {
        use = modelUse(source.net, source.labels, model.describe(source.net));
        next = modeOf(use, source.labels);
      } catch (err) {
        use = { kind: 'other', why: `This model cannot run here: ${err instanceof Error ? err.message : String(err)}` };
        next = { kind: 'none', why: use.why };
      }
      modeSource = { net: source.net, labels: source.labels };
      mode = next;
      const key = JSON.stringify(next);
      if (key !== modeKey) {
        modeKey = key;
        show(next);
        opts.onUse?.(use);
      }
    }
    return mode;
  }

  function show(m: Mode): void {
    root.dataset.mode = m.kind;
    pad.hidden = side.hidden = m.kind !== 'pad';
    textBox.hidden = m.kind !== 'text';
    none.hidden = m.kind !== 'none';
    none.textContent = m.kind === 'none' ? m.why : '';
    if (m.kind === 'pad') {
      buildBars(m.classes, m.names);
      canvas.setAttribute('aria-label', m.names ? `Drawing pad: draw one of ${m.names.join(', ')}` : 'Drawing pad: draw a digit from 0 to 9');
    }
  }
  root.dataset.mode = 'pad';
  textBox.hidden = true;
  none.hidden = true;

  // ---- the drawing pad ----

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
    rows.forEach(({ row, fill, value }, c) => {
      const p = prediction?.probabilities[c];
      row.classList.toggle('try-best', prediction?.label === c);
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
    const m = currentMode(source);
    if (!source || !m) {
      render(null, 'Waiting for the model…');
      return null;
    }
    if (m.kind !== 'pad') return null;
    const x = drawingInput();
    if (!x) {
      render(null, m.names ? 'Draw something' : 'Draw a digit');
      return null;
    }
    let logits: Float32Array;
    try {
      logits = model.forward(source.net, source.params, x, 1);
    } catch (err) {
      // Parameters of another model (the run changed under the host): wait for the next version.
      render(null, `The model did not run: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    const probabilities = softmax(logits, 0, m.classes);
    let label = 0;
    for (let c = 1; c < m.classes; c++) if (probabilities[c] > probabilities[label]) label = c;
    const name = m.names ? m.names[label] : String(label);
    const prediction = { probabilities, label, name };
    render(prediction, `It looks like ${m.names ? '' : 'a '}${name} (${Math.round(100 * probabilities[label])}%)`);
    return prediction;
  }

  // ---- the prompt box ----

  /** Bumped by every new sampling (and destroy): a sampling that sees another value stops. */
  let generation = 0;
  let lastSampled: { version: number; at: number } | undefined;
  let resampleTimer: ReturnType<typeof setTimeout> | undefined;
  let typingTimer: ReturnType<typeof setTimeout> | undefined;

  async function generate(prompt?: string): Promise<TryModelText | null> {
    const mine = ++generation;
    if (resampleTimer) clearTimeout(resampleTimer);
    resampleTimer = undefined;
    if (prompt !== undefined) promptInput.value = prompt;
    const source = opts.getModel();
    const m = currentMode(source);
    if (!source || !m || m.kind !== 'text') return null;
    const { context, vocabSize, vocab } = m;
    const { ids, dropped } = encodePrompt(promptInput.value, vocab);
    note.textContent = dropped.length ? `Left out, not in the model’s alphabet: ${dropped.map((c) => JSON.stringify(c)).join(' ')}` : '';
    const shown = ids.map((i) => vocab[i]).join('');
    // An empty prompt starts after a space (or the first character the model knows).
    const history = ids.length ? [...ids] : [Math.max(0, vocab.indexOf(' '))];
    const rng = createRng(seedOf(source.version, shown));
    const choices = Math.min(vocabSize, vocab.length);
    const x = new Float32Array(context);
    let text = '';
    given.textContent = shown;
    sampled.textContent = '';
    continuation.dataset.version = String(source.version);
    delete continuation.dataset.done;
    lastSampled = { version: source.version, at: Date.now() };
    while (text.length < length) {
      const sliceEnd = performance.now() + SLICE_MS;
      do {
        // The causal model reads the last `context` characters; positions after them are padding it cannot see.
        const window = history.slice(-context);
        x.fill(0);
        x.set(window);
        let logits: Float32Array;
        try {
          logits = model.forward(source.net, source.params, x, 1);
        } catch (err) {
          note.textContent = `The model did not run: ${err instanceof Error ? err.message : String(err)}`;
          return null;
        }
        const p = softmax(logits, (window.length - 1) * vocabSize, choices, temperature);
        const id = draw(p, rng.float());
        history.push(id);
        text += vocab[id];
      } while (text.length < length && performance.now() < sliceEnd);
      sampled.textContent = text;
      if (text.length < length) await nextTurn();
      if (mine !== generation) return null;
    }
    continuation.dataset.done = 'true';
    return { prompt: shown, text, dropped, version: source.version };
  }

  /** New parameters: re-sample a language model's continuation, at most every resampleEveryMs. */
  function resample(): void {
    const source = opts.getModel();
    if (currentMode(source)?.kind !== 'text' || !source || source.version === lastSampled?.version || resampleTimer) return;
    const wait = lastSampled ? Math.max(0, lastSampled.at + resampleEveryMs - Date.now()) : 0;
    resampleTimer = setTimeout(() => {
      resampleTimer = undefined;
      void generate();
    }, wait);
  }

  const onType = () => {
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      typingTimer = undefined;
      void generate();
    }, TYPING_MS);
  };
  promptInput.addEventListener('input', onType);

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
    redraw() {
      predict();
      resample();
    },
    setDigit,
    predict,
    generate,
    clear,
    destroy() {
      generation++;
      if (frame) cancelAnimationFrame(frame);
      if (resampleTimer) clearTimeout(resampleTimer);
      if (typingTimer) clearTimeout(typingTimer);
      promptInput.removeEventListener('input', onType);
      canvas.removeEventListener('pointerdown', onDown);
      canvas.removeEventListener('pointermove', onMove);
      canvas.removeEventListener('pointerup', onUp);
      canvas.removeEventListener('pointercancel', onUp);
      clearButton.removeEventListener('click', onClear);
      root.remove();
    },
  };
}
