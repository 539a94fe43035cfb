// Picks a worker's backend at join: WebGPU when there is an adapter and it beats the CPU on a
// small batch of the run's model, else the CPU (with the reason, which the page shows).
import type { AdapterSummary } from '../gpu/device.ts';
import { Gpu } from '../gpu/runtime.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';
import { labelsPerExample } from '../../shared/layers/head.ts';
import { describeModel, initModelParams } from '../../shared/layers/sequence.ts';
import type { Backend } from '../../shared/protocol.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import { cpuBackendFor, type GradientBackend } from './backend.ts';
import { webgpuBackendFor } from './webgpu-backend.ts';
import { LayerExecutor } from '../nn/layer-executor.ts';
import { cpuStageBackend, ExecutorStage, type StageBackend, type StageSetup } from './stage-backend.ts';

export interface BackendChoice {
  kind: Backend;
  reason: string;
  adapter: AdapterSummary | null;
  /** Median milliseconds per timed batch, per backend tried. */
  timings: Partial<Record<Backend, number>>;
  gpu: Gpu | null;
}

async function timeBackend(b: GradientBackend, net: NetInfo, batch: number, reps = 3): Promise<number> {
  const rng = createRng(1);
  const model = describeModel(net.layers, net.inputShape);
  const first = net.layers[0];
  // Token ids for a model that starts with an embedding, pixel-like values otherwise.
  const n = batch * model.inShape.reduce((a, c) => a * c, 1);
  const x = first.kind === 'embedding' ? Float32Array.from({ length: n }, () => rng.int(first.vocab as number)) : randomUniform(rng, n, 0, 1);
  const classes = model.outShape[model.outShape.length - 1];
  const labels = Array.from({ length: batch * labelsPerExample(model.outShape) }, () => rng.int(classes));
  b.setParams(initModelParams(model, 1));
  await b.gradients(x, labels, batch); // warm-up: compiles pipelines, fills caches
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await b.gradients(x, labels, batch);
    times.push(performance.now() - t0);
  }
  return times.sort((a, c) => a - c)[Math.floor(reps / 2)];
}

/** `force` skips the timing (a person or a test may insist on one backend). */
export async function chooseBackend(net: NetInfo, batch: number, force?: Backend): Promise<BackendChoice> {
  let gpu: Gpu | null = null;
  let noGpu = '';
  if (force !== 'cpu') {
    try {
      gpu = await Gpu.create();
    } catch (err) {
      noGpu = (err as Error).message;
    }
  }
  if (!gpu) return { kind: 'cpu', reason: force === 'cpu' ? 'CPU chosen by request' : `no WebGPU: ${noGpu}`, adapter: null, timings: {}, gpu: null };
  const adapter = gpu.info;
  if (force === 'webgpu') return { kind: 'webgpu', reason: 'WebGPU chosen by request', adapter, timings: {}, gpu };
  const small = Math.min(batch, 64);
  const webgpu = webgpuBackendFor(gpu, net, small);
  const cpu = cpuBackendFor(net, small);
  const timings = { webgpu: await timeBackend(webgpu, net, small), cpu: await timeBackend(cpu, net, small) };
  webgpu.dispose();
  cpu.dispose();
  const per = `${timings.webgpu.toFixed(1)} ms on WebGPU vs ${timings.cpu.toFixed(1)} ms on the CPU per ${small} examples`;
  if (timings.cpu < timings.webgpu) {
    const what = adapter.software ? `this adapter (${adapter.architecture || adapter.description || 'software'}) emulates a GPU on the CPU` : 'the CPU was faster here';
    return { kind: 'cpu', reason: `${what}: ${per}`, adapter, timings, gpu };
  }
  return { kind: 'webgpu', reason: per, adapter, timings, gpu };
}

/** Makes the chosen backend for one pipeline stage of a run's model: the layer executor of that backend on the stage's range. */
export function makeStageBackend(choice: BackendChoice, setup: StageSetup): StageBackend {
  if (!(choice.kind === 'webgpu' && choice.gpu)) return cpuStageBackend(setup);
  const { model, plan, maxMicroBatch, maxMicroBatches } = setup;
  return new ExecutorStage(plan, new LayerExecutor(choice.gpu, model, { first: plan.firstLayer, end: plan.endLayer, maxBatch: maxMicroBatch, maxMicroBatches }));
}

/** Makes (and warms up) the chosen backend for a run's model. */
export async function makeBackend(choice: BackendChoice, net: NetInfo, maxBatch: number): Promise<GradientBackend> {
  const b: GradientBackend = choice.kind === 'webgpu' && choice.gpu ? webgpuBackendFor(choice.gpu, net, maxBatch) : cpuBackendFor(net, maxBatch);
  await timeBackend(b, net, maxBatch, 1); // shader warm-up at the task size, before the first task
  return b;
}

