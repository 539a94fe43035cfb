// One-tab training loop: epochs of seeded shuffles over a GPU-resident dataset, progress every
// few steps, test evaluation after each epoch. Knows nothing of pages or of the coordinator.
import type { Dataset } from '../../shared/dataset.ts';
import { epochOrder } from '../../shared/epoch-order.ts';
import type { MlpExecutor } from './mlp.ts';

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
  /** Steps between loss reports (each report waits for the GPU). */
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
 * @example const r = await trainEpochs(exec, train, test, { epochs: 2, onProgress: console.log });
 */
export async function trainEpochs(exec: MlpExecutor, train: Dataset, test: Dataset, opts: TrainOptions): Promise<TrainResult> {
  const seed = opts.seed ?? 0;
  const reportEvery = opts.reportEvery ?? 25;
  const stepsPerEpoch = Math.floor(train.count / exec.batch);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const history: TrainProgress[] = [];
  const started = performance.now();
  let lastReport = started;
  let stepsSinceReport = 0;
  let step = 0;
  let evaluation = { accuracy: NaN, loss: NaN };
  exec.useDataset(train, epochOrder(train.count, seed, 0));
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    if (epoch > 0) exec.setOrder(epochOrder(train.count, seed, epoch));
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (opts.signal?.aborted) throw new DOMException('training stopped', 'AbortError');
      exec.trainStep();
      step++;
      stepsSinceReport++;
      const evalNow = s === stepsPerEpoch - 1 || (!!opts.evalEvery && step % opts.evalEvery === 0);
      if (stepsSinceReport === reportEvery || evalNow) {
        const loss = await exec.readLoss(); // also bounds the GPU queue
        const now = performance.now();
        const p: TrainProgress = { epoch, step, totalSteps, loss, samplesPerSec: (stepsSinceReport * exec.batch * 1000) / (now - lastReport) };
        lastReport = now;
        stepsSinceReport = 0;
        if (evalNow) {
          const ev = await exec.evaluate(test, opts.testCount ?? test.count);
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
  return { steps: step, seconds, samplesPerSec: (step * exec.batch) / seconds, testAccuracy: evaluation.accuracy, testLoss: evaluation.loss, history };
}
