// The Node half of `npm run bench -- worker`, run as a child process by bench/worker.node.ts
// (Dawn's Vulkan loader must be on the library path before a process starts): the probe of
// bench/worker-probe.ts on Dawn and on worker threads; prints its result as one JSON line.
import { availableParallelism } from 'node:os';
import { register } from 'node:module';

register('../node/wgsl-loader.mjs', import.meta.url);

const { installDawn } = await import('../node/dawn.ts');
const { Gpu } = await import('../client/gpu/runtime.ts');
const { CpuThreadPool } = await import('../node/cpu-lanes.ts');
const { probe } = await import('./worker-probe.ts');

const log = (m: string) => process.stderr.write(`[worker:node] ${m}\n`);
let gpu = null;
let why: string | null = null;
const dawn = await installDawn();
if (dawn.ok) {
  try {
    gpu = await Gpu.create();
  } catch (err) {
    why = (err as Error).message;
  }
} else why = dawn.reason;
if (why) log(`no WebGPU through Dawn: ${why}`);
const cores = availableParallelism();
const threads = [...new Set([1, 2, 3, 4, cores].filter((t) => t <= cores))];
const result = await probe({ gpu, lanes: (n, layers, inputShape, maxBatch, paramCount) => new CpuThreadPool(n, layers, inputShape, maxBatch, paramCount), threads, log });
process.stdout.write(`${JSON.stringify({ ...result, cores, no_webgpu: why })}\n`);
process.exit(0);
