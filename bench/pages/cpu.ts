// The cpu backend's training throughput: the CPU layer executor (shared/cpu/layer-executor.ts)
// against tfjs tf.layers on tfjs's cpu backend, training the same MLP with the same batch and
// optimizer, in this page. Timed in alternating windows so that machine noise hits both alike;
// medians reported. Also timed: the executor with its sparse-input path off, to show what
// MNIST's zero pixels are worth.
import { fetchDatasetSplit } from '../../client/data/fetch-dataset.ts';
import { CpuLayerExecutor } from '../../shared/cpu/layer-executor.ts';
import { setSparseBelow } from '../../shared/cpu/linear.ts';
import { featuresAsFloat } from '../../shared/dataset.ts';
import { describeModel, initModelParams } from '../../shared/layers/index.ts';
import { mlpLayers } from '../../shared/layers/shorthand.ts';
import { optimizerStepRef, type OptimizerConfig } from '../../shared/reference/optimizer.ts';

import { benchOptions, log, median, tfjsTrainer } from './common.ts';

const { BATCH, STEPS, WINDOWS, HIDDEN } = benchOptions({ batch: 64, steps: 50, windows: 7, hidden: 128 });

async function run() {
  const train = await fetchDatasetSplit('mnist-10k', 'train');
  const model = describeModel(mlpLayers([784, HIDDEN, 10], 'relu'), [784]);
  const optimizer: OptimizerConfig = { kind: 'adam', lr: 1e-3 };
  log(`cpu backend: MLP 784-${HIDDEN}-10, batch ${BATCH}, Adam 1e-3, ${WINDOWS} windows of ${STEPS} steps, ${navigator.hardwareConcurrency} logical cores`);

  // Both trainers get the same examples, already as float32 in memory (no conversion in the loop).
  const n = STEPS * BATCH;
  const xs = featuresAsFloat(train, 0, n);
  const labels = train.y.subarray(0, n);

  const makeOurs = (sparse: boolean) => {
    const exec = new CpuLayerExecutor(model, { maxBatch: BATCH });
    const params = initModelParams(model, 1);
    const state = { m: new Float32Array(model.paramCount), v: new Float32Array(model.paramCount) };
    let t = 0;
    let loss = NaN;
    const window = async () => {
      const old = setSparseBelow(sparse ? 0.5 : 0);
      const t0 = performance.now();
      for (let s = 0; s < STEPS; s++) {
        const o = s * BATCH;
        exec.setParams(params);
        const g = await exec.computeGradients(xs.subarray(o * 784, (o + BATCH) * 784), labels.subarray(o, o + BATCH), BATCH);
        optimizerStepRef(params, g.grads, state, optimizer, ++t);
        loss = g.loss;
      }
      const sps = (n * 1000) / (performance.now() - t0);
      setSparseBelow(old);
      return sps;
    };
    return { window, lastLoss: () => loss };
  };
  const ours = makeOurs(true);
  const oursDense = makeOurs(false);

  // tfjs on its cpu backend: the same model, optimizer and batch, data already in a tensor.
  const tfjs = await tfjsTrainer('cpu', xs, labels, n, HIDDEN, BATCH);
  const tfjsWindow = () => tfjs.window();

  // Warm-up: let V8 optimise every loop of every trainer once.
  await ours.window();
  await oursDense.window();
  await tfjsWindow();
  const oursSps: number[] = [];
  const denseSps: number[] = [];
  const tfjsSps: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    oursSps.push(await ours.window());
    tfjsSps.push(await tfjsWindow());
    denseSps.push(await oursDense.window());
    log(`window ${w + 1}: ours ${oursSps[w].toFixed(0)}  ours-dense ${denseSps[w].toFixed(0)}  tfjs-cpu ${tfjsSps[w].toFixed(0)} samples/s`);
  }
  const result = {
    adapter: 'cpu',
    model: `784-${HIDDEN}-10`,
    batch: BATCH,
    steps: STEPS * WINDOWS,
    cores: navigator.hardwareConcurrency,
    ours_cpu_sps: median(oursSps),
    ours_cpu_dense_sps: median(denseSps),
    tfjs_cpu_sps: median(tfjsSps),
    last_loss: { ours: ours.lastLoss(), ours_dense: oursDense.lastLoss(), tfjs_cpu: tfjs.lastLoss() },
    windows: { ours: oursSps, ours_dense: denseSps, tfjs_cpu: tfjsSps },
  };
  log(
    `median samples/s: ours ${result.ours_cpu_sps.toFixed(0)} (${(result.ours_cpu_sps / result.tfjs_cpu_sps).toFixed(2)}x tfjs-cpu), ` +
      `ours-dense ${result.ours_cpu_dense_sps.toFixed(0)}, tfjs-cpu ${result.tfjs_cpu_sps.toFixed(0)}`,
  );
  return result;
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
