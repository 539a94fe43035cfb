// What `npm run bench -- worker` measures, the same code in Node (Dawn, worker threads: through
// bench/worker-probe-node.ts) and in a Chromium page (WebGPU, Web Workers: bench/pages/worker.ts):
// matmul GFLOP/s of the project's kernel, training examples/s of the WebGPU backend on the MNIST
// MLP and the example CNN (gradients of random inputs: the arithmetic of real ones), and the CPU
// backend's examples/s at 1, 2, … threads. Medians of several windows.
import type { GradientBackend } from '../client/worker/backend.ts';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { ThreadedCpuBackend, type LanePool } from '../client/worker/threaded-backend.ts';
import { webgpuBackendFor } from '../client/worker/webgpu-backend.ts';
import { matmul } from '../client/gpu/ops/matmul.ts';
import type { Gpu } from '../client/gpu/runtime.ts';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { describeModel, initModelParams } from '../shared/layers/sequence.ts';
import { expandLayers, mlpLayers } from '../shared/layers/shorthand.ts';
import { createRng, randomUniform } from '../shared/rng.ts';

export interface ProbeEnv {
  /** null: no WebGPU here (the rows say so). */
  gpu: Gpu | null;
  lanes(threads: number, layers: LayerConfig[], inputShape: number[], maxBatch: number, paramCount: number): LanePool;
  /** Thread counts to time the CPU backend at. */
  threads: number[];
  log(m: string): void;
}

interface ModelCase {
  name: string;
  layers: LayerConfig[];
  inputShape: number[];
  batch: number;
}

export const PROBE_MODELS: ModelCase[] = [
  { name: 'mlp', layers: mlpLayers([784, 128, 10], 'relu'), inputShape: [784], batch: 64 },
  {
    name: 'cnn',
    layers: expandLayers([
      { kind: 'conv2d', out: 8, kernel: 3, padding: 1 },
      { kind: 'relu' },
      { kind: 'maxpool2d', size: 2 },
      { kind: 'conv2d', out: 16, kernel: 3, padding: 1 },
      { kind: 'relu' },
      { kind: 'maxpool2d', size: 2 },
      { kind: 'flatten' },
      { kind: 'dense', out: 10 },
    ]),
    inputShape: [1, 28, 28],
    batch: 32,
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Examples/s of `backend` on one model: `windows` windows of `steps` gradient computations after a warm-up. */
async function trainRate(backend: GradientBackend, c: ModelCase, windows = 5, steps = 4): Promise<number> {
  const model = describeModel(c.layers, c.inputShape);
  const rng = createRng(3);
  const x = randomUniform(rng, c.batch * model.inShape.reduce((a, b) => a * b, 1), 0, 1);
  const labels = Int32Array.from({ length: c.batch }, () => rng.int(10));
  backend.setParams(initModelParams(model, 1));
  await backend.gradients(x, labels, c.batch);
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) {
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await backend.gradients(x, labels, c.batch);
    rates.push((steps * c.batch * 1000) / (performance.now() - t0));
  }
  return median(rates);
}

async function matmulGflops(gpu: Gpu, size: number, windows = 5): Promise<number> {
  const rng = createRng(1);
  const a = gpu.upload(randomUniform(rng, size * size, -1, 1));
  const b = gpu.upload(randomUniform(rng, size * size, -1, 1));
  const c = gpu.buffer(4 * size * size);
  const d = matmul(gpu, { a, b, c, m: size, n: size, k: size });
  gpu.submit([d]);
  await gpu.sync();
  const inner = 4;
  const rates: number[] = [];
  for (let w = 0; w < windows; w++) {
    const t0 = performance.now();
    gpu.submit(Array<typeof d>(inner).fill(d));
    await gpu.sync();
    rates.push((inner * 2 * size ** 3) / ((performance.now() - t0) / 1000) / 1e9);
  }
  for (const buf of [a, b, c]) buf.destroy();
  return median(rates);
}

export interface ProbeResult {
  adapter: string | null;
  matmul: { size: number; gflops: number } | null;
  webgpu: { model: string; examples_per_sec: number }[];
  cpu: { model: string; threads: number; examples_per_sec: number }[];
}

export async function probe(env: ProbeEnv, matmulSize = 256): Promise<ProbeResult> {
  const out: ProbeResult = { adapter: null, matmul: null, webgpu: [], cpu: [] };
  if (env.gpu) {
    const i = env.gpu.info;
    out.adapter = [i.vendor, i.architecture, i.description].filter(Boolean).join(' · ');
    out.matmul = { size: matmulSize, gflops: await matmulGflops(env.gpu, matmulSize) };
    env.log(`matmul ${matmulSize}³: ${out.matmul.gflops.toFixed(2)} GFLOP/s`);
    for (const c of PROBE_MODELS) {
      const b = webgpuBackendFor(env.gpu, c, c.batch);
      const eps = await trainRate(b, c);
      b.dispose();
      out.webgpu.push({ model: c.name, examples_per_sec: eps });
      env.log(`webgpu ${c.name}: ${eps.toFixed(0)} examples/s`);
    }
  }
  for (const c of PROBE_MODELS) {
    const model = describeModel(c.layers, c.inputShape);
    for (const threads of env.threads) {
      // One thread: the plain backend on this thread, as a one-core worker computes.
      const b = threads === 1 ? new LayerCpuBackend(model, c.batch) : new ThreadedCpuBackend(model, c.batch, env.lanes(threads, c.layers, c.inputShape, c.batch, model.paramCount));
      const eps = await trainRate(b, c);
      b.dispose();
      out.cpu.push({ model: c.name, threads, examples_per_sec: eps });
      env.log(`cpu ${c.name} × ${threads}: ${eps.toFixed(0)} examples/s`);
    }
  }
  return out;
}
