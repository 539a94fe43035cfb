// The page half of `npm run bench -- worker` (bench/worker.node.ts runs it): the probe of
// bench/worker-probe.ts on this page's WebGPU and on Web Worker lanes.
import { Gpu } from '../../client/gpu/runtime.ts';
import { WebWorkerPool } from '../../client/worker/web-lanes.ts';
import { probe } from '../worker-probe.ts';
import { log } from './common.ts';

async function run() {
  let gpu: Gpu | null = null;
  let why: string | null = null;
  try {
    gpu = await Gpu.create();
  } catch (err) {
    why = (err as Error).message;
  }
  const cores = navigator.hardwareConcurrency || 1;
  const threads = [...new Set([1, 2, 3, 4, cores].filter((t) => t <= cores))];
  const result = await probe({ gpu, lanes: (n, layers, inputShape, maxBatch, paramCount) => new WebWorkerPool(n, layers, inputShape, maxBatch, paramCount), threads, log });
  return { ...result, cores, no_webgpu: why };
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
