// Held-out evaluation of a model's parameters on a fixed set of examples (the first ones of a
// dataset's test split), through the fast CPU layer kernels in shared/. Pure computation: it runs
// in the evaluation thread (server/eval-worker.ts) and, for tests and the simulator, inline. It
// knows nothing of runs, rounds or threads.
//
// A classifier (logits [classes]) is scored per example: accuracy and mean cross-entropy. A
// language model (logits [positions, vocabulary], one label per position) is scored per
// position: `loss` is the mean cross-entropy over every position of every window, in nats per
// token (bits per token = loss / ln 2), and `accuracy` is the next-token accuracy (the share of
// positions whose most likely token is the label).
import { cpuKernels } from '../shared/cpu/index.ts';
import { featuresAsFloat, labelWidthOf, type Dataset } from '../shared/dataset.ts';
import { labelsPerExample } from '../shared/layers/head.ts';
import { forwardRange, type ModelDescription } from '../shared/layers/sequence.ts';
import type { Evaluation } from './scheduler.ts';

/** Logits evaluated at a time, at most (bounds the activations held at once). */
const CHUNK_LOGITS = 1 << 20;
/** Examples evaluated at a time, at most. */
const CHUNK_EXAMPLES = 256;

/** Bits per token of a loss in nats per token. */
export const bitsOf = (nats: number): number => nats / Math.LN2;

/**
 * @example
 * const ev = new Evaluator(mnist.test, 2000).evaluate(run.net, run.params); // { accuracy, loss }
 */
export class Evaluator {
  /** Examples evaluated: the first `count` of the dataset, always the same ones. */
  readonly count: number;
  private readonly x: Float32Array;

  constructor(
    private readonly test: Dataset,
    examples = test.count,
  ) {
    this.count = Math.min(examples, test.count);
    this.x = featuresAsFloat(test, 0, this.count);
  }

  /** Accuracy and mean cross-entropy of `params` on the first `examples` (default: all held). */
  evaluate(net: { description: ModelDescription }, params: Float32Array, examples = this.count): Evaluation {
    const model = net.description;
    const n = Math.min(examples, this.count);
    const classes = model.outShape[model.outShape.length - 1];
    const positions = labelsPerExample(model.outShape);
    const width = labelWidthOf(this.test);
    if (positions !== width) throw new Error(`the model predicts ${positions} label(s) per example, the dataset has ${width}`);
    const features = this.test.features;
    const perChunk = Math.max(1, Math.min(CHUNK_EXAMPLES, Math.floor(CHUNK_LOGITS / (positions * classes))));
    let correct = 0;
    let loss = 0;
    for (let start = 0; start < n; start += perChunk) {
      const b = Math.min(perChunk, n - start);
      const { y } = forwardRange(model, params, this.x.subarray(start * features, (start + b) * features), b, { kernels: cpuKernels });
      const labels = this.test.y.subarray(start * width, (start + b) * width);
      for (let r = 0; r < b * positions; r++) {
        const row = y.subarray(r * classes, (r + 1) * classes);
        const label = labels[r];
        let best = 0;
        let max = row[0];
        for (let c = 1; c < classes; c++) if (row[c] > max) (max = row[c]), (best = c);
        if (best === label) correct++;
        let sum = 0;
        for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
        loss += Math.log(sum) + max - row[label];
      }
    }
    const rows = n * positions;
    return { accuracy: correct / rows, loss: loss / rows };
  }
}
