// Run in a child process by test/node-worker.test.ts (Dawn's Vulkan loader must be on the library
// path before a process starts): the gradients of the small MLP, CNN and transformer of
// local-cases.ts on WebGPU through Dawn, the same kernels as the page, against the CPU backend,
// printed as one JSON line: per case the loss's relative difference and each parameter tensor's
// largest difference relative to its own largest gradient.
import { register } from 'node:module';

register('../../node/wgsl-loader.mjs', import.meta.url);

const { installDawn } = await import('../../node/dawn.ts');
const dawn = await installDawn();
if (!dawn.ok) {
  console.log(JSON.stringify({ error: dawn.reason }));
  process.exit(0);
}
const { Gpu } = await import('../../client/gpu/runtime.ts');
const { webgpuBackendFor } = await import('../../client/worker/webgpu-backend.ts');
const { LayerCpuBackend } = await import('../../client/worker/backend.ts');
const { CNN_CASE, MLP_CASE, TRANSFORMER_CASE, modelOf, sourceOf, startParams, taskIndices } = await import('./local-cases.ts');

let gpu;
try {
  gpu = await Gpu.create();
} catch (err) {
  console.log(JSON.stringify({ error: (err as Error).message }));
  process.exit(0);
}
const cases = [];
for (const c of [MLP_CASE, CNN_CASE, TRANSFORMER_CASE]) {
  const batch = 6;
  const model = modelOf(c);
  const params = startParams(model, 4);
  const { x, labels } = await sourceOf(c).batch(taskIndices(batch, 3));
  const cpu = new LayerCpuBackend(model, batch);
  cpu.setParams(params);
  const want = await cpu.gradients(x, labels, batch);
  const wantGrads = want.grads.slice();
  const gpuBackend = webgpuBackendFor(gpu, { layers: c.layers, inputShape: c.inShape }, batch);
  gpuBackend.setParams(params);
  const got = await gpuBackend.gradients(x, labels, batch);
  const tensors = model.layers.flatMap((l) =>
    l.params.map((p) => {
      let scale = 0;
      let diff = 0;
      for (let i = p.offset; i < p.offset + p.size; i++) {
        scale = Math.max(scale, Math.abs(wantGrads[i]));
        diff = Math.max(diff, Math.abs(got.grads[i] - wantGrads[i]));
      }
      return { name: p.name, rel: scale > 0 ? diff / scale : diff };
    }),
  );
  cases.push({ name: c.name, lossRel: Math.abs(got.loss - want.loss) / Math.abs(want.loss), tensors, nonzero: wantGrads.some((g) => g !== 0) });
  gpuBackend.dispose();
}
console.log(JSON.stringify({ adapter: gpu.info, cases }));
process.exit(0);
