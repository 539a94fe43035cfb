// One-tab training throughput: crowdtrain's executor against tfjs tf.layers (webgpu and cpu
// backends) training the same MLP with the same batch and optimizer, in this page.
// Timed in alternating windows so that machine noise hits all trainers alike; medians reported.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { fetchDatasetSplit } from '../../client/data/fetch-dataset.ts';
import { Gpu } from '../../client/gpu/runtime.ts';
import { MlpExecutor } from '../../client/nn/mlp.ts';
import { epochOrder } from '../../shared/epoch-order.ts';
import { featuresAsFloat } from '../../shared/dataset.ts';

const params = new URLSearchParams(location.search);
const BATCH = Number(params.get('batch') ?? 64);
const STEPS = Number(params.get('steps') ?? 40); // steps per timed window
const WINDOWS = Number(params.get('windows') ?? 5);
const HIDDEN = Number(params.get('hidden') ?? 128);
const log = (m: string) => {
  console.log(m);
  document.getElementById('log')!.textContent += `${m}\n`;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run() {
  const train = await fetchDatasetSplit('mnist', 'train');
  const gpu = await Gpu.create();
  const adapter = [gpu.info.vendor, gpu.info.architecture, gpu.info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapter}; MLP 784-${HIDDEN}-10, batch ${BATCH}, ${WINDOWS} windows of ${STEPS} steps`);

  const exec = new MlpExecutor(gpu, { spec: { layers: [784, HIDDEN, 10], activation: 'relu' }, batch: BATCH, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 1 });
  exec.useDataset(train, epochOrder(train.count, 1, 0));
  const oursWindow = async () => {
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) exec.trainStep();
    await exec.readLoss();
    return (STEPS * BATCH * 1000) / (performance.now() - t0);
  };

  // tfjs: the same model, optimizer and batch, data already in a tensor (no upload in the loop).
  const n = STEPS * BATCH;
  const xs = featuresAsFloat(train, 0, n);
  const ys = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) ys[i * 10 + train.y[i]] = 1;
  const makeTfjs = async (backend: string) => {
    await tf.setBackend(backend);
    await tf.ready();
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [784], units: HIDDEN, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })],
    });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const x = tf.tensor2d(xs, [n, 784]);
    const y = tf.tensor2d(ys, [n, 10]);
    return async () => {
      await tf.setBackend(backend);
      const t0 = performance.now();
      await model.fit(x, y, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0, yieldEvery: 'never' });
      return (n * 1000) / (performance.now() - t0);
    };
  };
  const tfWebgpu = await makeTfjs('webgpu');
  const tfCpu = await makeTfjs('cpu');

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
