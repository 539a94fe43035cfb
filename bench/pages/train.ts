// One-tab training throughput: crowdtrain's executor against tfjs tf.layers (webgpu and cpu
// backends) training the same MLP with the same batch and optimizer, in this page.
// Timed in alternating windows so that machine noise hits all trainers alike; medians reported.
import '@tensorflow/tfjs-backend-webgpu';
import { fetchDatasetSplit } from '../../client/data/fetch-dataset.ts';
import { Gpu } from '../../client/gpu/runtime.ts';
import { TabTrainer } from '../../client/nn/trainer.ts';
import { featuresAsFloat } from '../../shared/dataset.ts';
import { describeModel } from '../../shared/layers/index.ts';
import { mlpLayers } from '../../shared/layers/shorthand.ts';
import { benchOptions, log, median, tfjsTrainer } from './common.ts';

const { BATCH, STEPS, WINDOWS, HIDDEN } = benchOptions({ batch: 64, steps: 40, windows: 5, hidden: 128 });

async function run() {
  const train = await fetchDatasetSplit('mnist-10k', 'train');
  const gpu = await Gpu.create();
  const adapter = [gpu.info.vendor, gpu.info.architecture, gpu.info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapter}; MLP 784-${HIDDEN}-10, batch ${BATCH}, ${WINDOWS} windows of ${STEPS} steps`);

  // Every trainer gets the same examples, already as float32 in memory (no conversion in the loop).
  const n = STEPS * BATCH;
  const xs = featuresAsFloat(train, 0, n);
  const model = describeModel(mlpLayers([784, HIDDEN, 10], 'relu'), [784]);
  const trainer = new TabTrainer(gpu, model, { batch: BATCH, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 1 });
  const oursWindow = async () => {
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) await trainer.step(xs.subarray(s * BATCH * 784, (s + 1) * BATCH * 784), train.y.subarray(s * BATCH, (s + 1) * BATCH));
    return (STEPS * BATCH * 1000) / (performance.now() - t0);
  };

  // tfjs: the same model, optimizer and batch, data already in a tensor.
  const tfWebgpu = (await tfjsTrainer('webgpu', xs, train.y, n, HIDDEN, BATCH)).window;
  const tfCpu = (await tfjsTrainer('cpu', xs, train.y, n, HIDDEN, BATCH)).window;

  // Warm-up: compile every pipeline of every trainer once.
  await oursWindow();
  await tfWebgpu();
  await tfCpu();
  const ours: number[] = [];
  const webgpu: number[] = [];
  const cpu: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    ours.push(await oursWindow());
    webgpu.push(await tfWebgpu());
    cpu.push(await tfCpu());
    log(`window ${w + 1}: ours ${ours[w].toFixed(0)}  tfjs-webgpu ${webgpu[w].toFixed(0)}  tfjs-cpu ${cpu[w].toFixed(0)} samples/s`);
  }
  const result = {
    adapter,
    model: `784-${HIDDEN}-10`,
    batch: BATCH,
    steps: STEPS * WINDOWS,
    ours_sps: median(ours),
    tfjs_webgpu_sps: median(webgpu),
    tfjs_cpu_sps: median(cpu),
    windows: { ours, tfjs_webgpu: webgpu, tfjs_cpu: cpu },
  };
  log(`median samples/s: ours ${result.ours_sps.toFixed(0)}, tfjs-webgpu ${result.tfjs_webgpu_sps.toFixed(0)} (${(result.ours_sps / result.tfjs_webgpu_sps).toFixed(2)}x), tfjs-cpu ${result.tfjs_cpu_sps.toFixed(0)}`);
  return result;
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
