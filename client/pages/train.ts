// The "train in this tab" page: MNIST on this tab's GPU, with loss and test accuracy live.
import './no-eval.ts'; // first: before any zod schema is parsed
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fetchDatasetSplit } from '../data/fetch-dataset.ts';
import { WebGpuUnavailableError } from '../gpu/device.ts';
import type { OptimizerConfig } from '../gpu/ops/optimizer.ts';
import { Gpu } from '../gpu/runtime.ts';
import { TabTrainer, trainEpochs, type TrainProgress } from '../nn/trainer.ts';
import { describeModel } from '../../shared/layers/index.ts';
import { mlpLayers } from '../../shared/layers/shorthand.ts';
import type { Dataset } from '../../shared/dataset.ts';
import type { HiddenActivation, MlpSpec } from '../../shared/model.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, error = false) => {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
};

let gpu: Gpu | undefined;
let data: { train: Dataset; test: Dataset } | undefined;
let abort: AbortController | undefined;
let trainer: TabTrainer | undefined;

function readConfig(): { spec: MlpSpec; optimizer: OptimizerConfig; batch: number; epochs: number } {
  const form = new FormData($<HTMLFormElement>('config'));
  const hidden = String(form.get('hidden')).split(',').map((s) => Number(s.trim()));
  if (hidden.some((w) => !Number.isInteger(w) || w < 1 || w > 4096)) throw new Error('Hidden widths must be whole numbers between 1 and 4096, separated by commas.');
  const lr = Number(form.get('lr'));
  if (!(lr > 0 && lr <= 10)) throw new Error('Learning rate must be a number in (0, 10].');
  const batch = Number(form.get('batch'));
  if (!Number.isInteger(batch) || batch < 1 || batch > 4096) throw new Error('Batch must be a whole number between 1 and 4096.');
  const epochs = Number(form.get('epochs'));
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 100) throw new Error('Epochs must be a whole number between 1 and 100.');
  return {
    spec: { layers: [784, ...hidden, 10], activation: form.get('activation') as HiddenActivation },
    optimizer: { kind: form.get('optimizer') as OptimizerConfig['kind'], lr },
    batch,
    epochs,
  };
}

function makeChart(): { add: (p: TrainProgress) => void } {
  const xs: number[] = [];
  const loss: (number | null)[] = [];
  const acc: (number | null)[] = [];
  const el = $('chart');
  const plot = new uPlot(
    {
      width: el.clientWidth || 800,
      height: 260,
      scales: { x: { time: false }, acc: { range: [0, 1] } },
      series: [
        { label: 'step' },
        { label: 'train loss', stroke: '#2f6fed', width: 2 },
        { label: 'test accuracy', stroke: '#19a463', width: 2, scale: 'acc', spanGaps: true, points: { show: true } },
      ],
      axes: [{}, { label: 'loss' }, { side: 1, scale: 'acc', label: 'accuracy', grid: { show: false } }],
    },
    [xs, loss, acc],
    el,
  );
  return {
    add(p) {
      xs.push(p.step);
      loss.push(Number.isFinite(p.loss) ? p.loss : null);
      acc.push(p.testAccuracy ?? null);
      plot.setData([xs, loss, acc]);
    },
  };
}

async function start(): Promise<void> {
  try {
    gpu = await Gpu.create();
    const i = gpu.info;
    $('adapter').textContent = [i.vendor, i.architecture, i.description].filter(Boolean).join(' · ') || 'unknown adapter';
    $('backend').textContent = `WebGPU${i.software ? ' (software: expect CPU speed)' : ''}`;
  } catch (err) {
    $('adapter').textContent = 'none';
    $('backend').textContent = 'unavailable';
    status(err instanceof WebGpuUnavailableError ? err.message : `WebGPU failed: ${(err as Error).message}`, true);
    return;
  }
  status('Downloading MNIST…');
  try {
    const onProgress = (p: { split: string; loaded: number; total: number }) => status(`Downloading MNIST ${p.split}: ${Math.round((100 * p.loaded) / p.total)}%`);
    // The 10,000-digit subset (8,000 / 2,000): a few MB, where the full MNIST's training split is 47 MB.
    data = { train: await fetchDatasetSplit('mnist-10k', 'train', onProgress), test: await fetchDatasetSplit('mnist-10k', 'test', onProgress) };
  } catch (err) {
    status(`Could not load MNIST: ${(err as Error).message}`, true);
    return;
  }
  status(`Ready: ${data.train.count} training and ${data.test.count} test digits.`);
  $<HTMLButtonElement>('train').disabled = false;
}

async function train(): Promise<void> {
  if (!gpu || !data) return;
  let config;
  try {
    config = readConfig();
  } catch (err) {
    status((err as Error).message, true);
    return;
  }
  $<HTMLButtonElement>('train').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  $('chart').replaceChildren();
  const chart = makeChart();
  abort = new AbortController();
  status('Compiling kernels…');
  trainer?.destroy(); // the previous run's buffers
  const model = describeModel(mlpLayers(config.spec.layers, config.spec.activation), [config.spec.layers[0]]);
  trainer = new TabTrainer(gpu, model, { batch: config.batch, optimizer: config.optimizer, seed: Date.now() >>> 0 });
  status(`Training ${config.spec.layers.join('-')} for ${config.epochs} epochs…`);
  try {
    const result = await trainEpochs(trainer, data.train, data.test, {
      epochs: config.epochs,
      evalEvery: 50,
      signal: abort.signal,
      onProgress: (p) => {
        $<HTMLProgressElement>('progress').value = p.step / p.totalSteps;
        $('step').textContent = `${p.step} / ${p.totalSteps} (epoch ${p.epoch + 1})`;
        $('loss').textContent = p.loss.toFixed(4);
        $('sps').textContent = Math.round(p.samplesPerSec).toLocaleString();
        if (p.testAccuracy !== undefined) $('accuracy').textContent = `${(100 * p.testAccuracy).toFixed(2)} %`;
        chart.add(p);
      },
    });
    status(`Done: ${(100 * result.testAccuracy).toFixed(2)} % test accuracy after ${result.steps} steps in ${result.seconds.toFixed(1)} s (${Math.round(result.samplesPerSec)} samples/s overall).`);
  } catch (err) {
    status((err as Error).name === 'AbortError' ? 'Stopped.' : `Training failed: ${(err as Error).message}`, (err as Error).name !== 'AbortError');
  } finally {
    $<HTMLButtonElement>('train').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

$<HTMLFormElement>('config').addEventListener('submit', (e) => {
  e.preventDefault();
  void train();
});
$('stop').addEventListener('click', () => abort?.abort());
void start();
