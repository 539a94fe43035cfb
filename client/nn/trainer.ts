// One-tab training: the layer executor's gradient on the GPU and the optimizer's step on the GPU
// (in place on the executor's parameters), epochs of seeded shuffles over a dataset held in the
// page, progress every few steps, test evaluation after each epoch. Knows nothing of pages or of
// the coordinator.
//
// @example
//   const trainer = new TabTrainer(gpu, describeModel(mlpLayers([784, 128, 10], 'relu'), [784]), { batch: 64, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 1 });
//   const r = await trainEpochs(trainer, train, test, { epochs: 2, onProgress: console.log });
import { featuresAsFloat, labelWidthOf, selectExamples, sliceExamples, type Dataset } from '../../shared/dataset.ts';
import { epochOrder } from '../../shared/epoch-order.ts';
import { initModelParams, type ModelDescription } from '../../shared/layers/sequence.ts';
import { softmaxCrossEntropyRef } from '../../shared/reference/softmax-ce.ts';
import type { OptimizerConfig } from '../gpu/ops/optimizer.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { ExecutorOptimizer } from './executor-optimizer.ts';
import { LayerExecutor } from './layer-executor.ts';

export interface TabTrainerOptions {
  batch: number;
  optimizer: OptimizerConfig;
  /** Seed of the initial parameters (PyTorch's default initialisation of each layer). */
  seed: number;
}

/** A model trained in this tab: parameters, gradients and optimizer state on the GPU. */
export class TabTrainer {
  readonly exec: LayerExecutor;
  readonly batch: number;
  private readonly config: OptimizerConfig;
  private readonly optimizer: ExecutorOptimizer;

  constructor(
    readonly gpu: Gpu,
    readonly model: ModelDescription,
    opts: TabTrainerOptions,
  ) {
    this.batch = opts.batch;
    this.config = opts.optimizer;
    this.exec = new LayerExecutor(gpu, model, { maxBatch: opts.batch });
    this.exec.setParams(initModelParams(model, opts.seed));
    this.optimizer = new ExecutorOptimizer(gpu, 'trainer');
  }

  /** One optimizer step on x [batch, ...inShape] and its labels; resolves with the batch's mean loss. */
  async step(x: Float32Array, labels: ArrayLike<number>): Promise<number> {
    this.exec.zeroGrads();
    const { loss } = await this.exec.forwardBackwardLoss(x, labels, this.batch);
    this.optimizer.step(this.exec, this.config);
    return loss;
  }

  /** Test accuracy (per label) and mean loss on the first `count` examples of `test`. */
  async evaluate(test: Dataset, count = test.count): Promise<{ accuracy: number; loss: number }> {
    const width = labelWidthOf(test);
    const classes = this.model.outShape[this.model.outShape.length - 1];
    let correct = 0;
    let lossSum = 0;
    for (let start = 0; start < count; start += this.batch) {
      const n = Math.min(this.batch, count - start);
      const part = sliceExamples(test, start, n);
      const logits = await this.exec.predict(featuresAsFloat(part), n);
      const rows = n * width;
      lossSum += softmaxCrossEntropyRef(logits, part.y, rows, classes).meanLoss * rows;
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
        if (best === part.y[r]) correct++;
      }
    }
    const rows = count * width;
    return { accuracy: correct / rows, loss: lossSum / rows };
  }

  destroy(): void {
    this.optimizer.destroy();
    this.exec.destroy();
  }
}

export interface TrainProgress {
  epoch: number;
  /** Steps done in this run of the loop. */
  step: number;
  totalSteps: number;
  /** Mean training loss since the last report. */
  loss: number;
  samplesPerSec: number;
  /** Set after an epoch's evaluation. */
  testAccuracy?: number;
  testLoss?: number;
}

export interface TrainOptions {
  epochs: number;
  seed?: number;
  /** Steps between loss reports. */
  reportEvery?: number;
  /** Also evaluate every this many steps (default: only at the end of each epoch). */
  evalEvery?: number;
  /** Examples of the test set used for evaluation (default: all). */
  testCount?: number;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  steps: number;
  seconds: number;
  samplesPerSec: number;
  testAccuracy: number;
  testLoss: number;
  history: TrainProgress[];
}

/**
 * @example const r = await trainEpochs(trainer, train, test, { epochs: 2, onProgress: console.log });
 */
export async function trainEpochs(trainer: TabTrainer, train: Dataset, test: Dataset, opts: TrainOptions): Promise<TrainResult> {
  const seed = opts.seed ?? 0;
  const reportEvery = opts.reportEvery ?? 25;
  const batch = trainer.batch;
  const stepsPerEpoch = Math.floor(train.count / batch);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const history: TrainProgress[] = [];
  const started = performance.now();
  let lastReport = started;
  let stepsSinceReport = 0;
  let lossSinceReport = 0;
  let step = 0;
  let evaluation = { accuracy: NaN, loss: NaN };
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const order = epochOrder(train.count, seed, epoch);
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (opts.signal?.aborted) throw new DOMException('training stopped', 'AbortError');
      const part = selectExamples(train, order.subarray(s * batch, (s + 1) * batch));
      lossSinceReport += await trainer.step(featuresAsFloat(part), part.y);
      step++;
      stepsSinceReport++;
      const evalNow = s === stepsPerEpoch - 1 || (!!opts.evalEvery && step % opts.evalEvery === 0);
      if (stepsSinceReport === reportEvery || evalNow) {
        const now = performance.now();
        const p: TrainProgress = { epoch, step, totalSteps, loss: lossSinceReport / stepsSinceReport, samplesPerSec: (stepsSinceReport * batch * 1000) / (now - lastReport) };
        lastReport = now;
        stepsSinceReport = 0;
        lossSinceReport = 0;
        if (evalNow) {
          const ev = await trainer.evaluate(test, opts.testCount ?? test.count);
          evaluation = ev;
          p.testAccuracy = ev.accuracy;
          p.testLoss = ev.loss;
          lastReport = performance.now(); // evaluation time is not training throughput
        }
        history.push(p);
        opts.onProgress?.(p);
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return { steps: step, seconds, samplesPerSec: (step * batch) / seconds, testAccuracy: evaluation.accuracy, testLoss: evaluation.loss, history };
}
