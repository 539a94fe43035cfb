// A run's model as the pages run it on this tab's CPU (try the model, the wrong-examples strip):
// the layer list described once per net, forwarded with the shared CPU kernels, and what kind of
// model it is (an image classifier, a character language model, or something the panels do not
// show). Fetching the parameters and drawing belong to the widgets and their hosts.
//
// @example
//   const model = new PageModel();
//   const use = modelUse(net, { vocab });            // { kind: 'image', ... } | { kind: 'text', ... } | { kind: 'other', why }
//   const logits = model.forward(net, params, x, 1); // [1, ...outShape]
import { cpuKernels } from '../../shared/cpu/index.ts';
import { describeModel, forwardRange, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { NetInfo } from '../../shared/run-model.ts';

/** What the pages know of a run's dataset beyond its shape (RunInfo.dataset, RunSummary.dataset). */
export interface ModelLabels {
  /** Class names, index = label; unset: the classes are shown by number (digits). */
  classNames?: string[];
  /** A text's characters, index = token id. */
  vocab?: string[];
}

export type ModelUse =
  /** Logits [classes] from one image of `channels` × `side` × `side` (or its flat form). */
  | { kind: 'image'; side: number; channels: number; classes: number }
  /** Logits [T, V] from T token ids: a language model over `vocab`. */
  | { kind: 'text'; context: number; vocabSize: number; vocab: string[] }
  | { kind: 'other'; why: string };

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Side and channels of a square image an input shape holds: [C, H, H], or [H·H] (one channel, at least 8×8: fewer numbers are a table row). */
function imageOf(inputShape: readonly number[]): { side: number; channels: number } | null {
  if (inputShape.length === 3 && inputShape[1] === inputShape[2]) return { side: inputShape[1], channels: inputShape[0] };
  if (inputShape.length === 1) {
    const side = Math.round(Math.sqrt(inputShape[0]));
    if (side >= 8 && side * side === inputShape[0]) return { side, channels: 1 };
  }
  return null;
}

/** How the pages can show this model: by its input and output shapes, and the dataset's vocabulary. */
export function modelUse(net: NetInfo, labels: ModelLabels = {}, description: ModelDescription = describeModel(net.layers, net.inputShape)): ModelUse {
  const out = description.outShape;
  if (out.length === 2 && net.inputShape.length === 1 && out[0] === net.inputShape[0]) {
    const vocab = labels.vocab;
    if (!vocab || vocab.length === 0) return { kind: 'other', why: 'This language model’s run does not say which characters its tokens are.' };
    return { kind: 'text', context: out[0], vocabSize: out[1], vocab };
  }
  if (out.length !== 1) return { kind: 'other', why: `This model’s output (${out.join('×')}) is neither class scores nor next-character scores.` };
  const image = imageOf(net.inputShape);
  if (!image || (image.channels !== 1 && image.channels !== 3)) return { kind: 'other', why: `This model reads ${product(net.inputShape)} numbers, not an image.` };
  return { kind: 'image', ...image, classes: out[0] };
}

/** Keeps the description of the latest net, so a page describes a model once, not on every forward. */
export class PageModel {
  private key = '';
  private description: ModelDescription | undefined;

  describe(net: NetInfo): ModelDescription {
    const key = JSON.stringify([net.layers, net.inputShape]);
    if (!this.description || key !== this.key) {
      this.description = describeModel(net.layers, net.inputShape);
      this.key = key;
    }
    return this.description;
  }

  /** Logits [batch, ...outShape] of x [batch, ...inputShape]; params is the model's flat vector. */
  forward(net: NetInfo, params: Float32Array, x: Float32Array, batch: number): Float32Array {
    const description = this.describe(net);
    if (params.length !== description.paramCount) throw new RangeError(`the model has ${description.paramCount} parameters, got ${params.length}`);
    return forwardRange(description, params, x, batch, { kernels: cpuKernels }).y;
  }
}

/** Softmax of logits[offset, offset + n) in float64, at temperature `t` (1: the model's own). */
export function softmax(logits: ArrayLike<number>, offset: number, n: number, t = 1): number[] {
  let max = -Infinity;
  for (let c = 0; c < n; c++) max = Math.max(max, logits[offset + c]);
  const exps = Array.from({ length: n }, (_, c) => Math.exp((logits[offset + c] - max) / t));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
