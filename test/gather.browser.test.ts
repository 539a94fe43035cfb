import { describe, expect, test } from 'vitest';
import { gather, packBytes, gatherParams } from '../client/gpu/ops/gather.ts';
import { createRng } from '../shared/rng.ts';
import { testGpu } from './helpers/gpu.ts';
import { expectClose } from './helpers/check-op.ts';

describe('gather (uint8 dataset rows -> f32 batch)', () => {
  test.for([
    { n: 10, f: 7, b: 3, start: 0 },
    { n: 33, f: 784, b: 17, start: 29 },
    { n: 5, f: 1, b: 5, start: 3 },
  ])('N=$n F=$f B=$b start=$start', async ({ n, f, b, start }) => {
    const gpu = await testGpu();
    const rng = createRng(n * 31 + f);
    const bytes = new Uint8Array(n * f).map(() => rng.int(256));
    const labels = new Uint8Array(n).map(() => rng.int(10));
    const order = Uint32Array.from(rng.shuffle([...Array(n).keys()]));
    const x = gpu.buffer(b * f * 4);
    const y = gpu.buffer(b * 4);
    const args = { data: gpu.upload(packBytes(bytes)), labels: gpu.upload(packBytes(labels)), order: gpu.upload(order), orderLength: n, x, y, batch: b, features: f, count: n };
    const d = gather(gpu, args);
    gpu.setUniforms(d, gatherParams(args, start));
    gpu.submit([d]);
    const ex = new Float32Array(b * f);
    const ey = new Uint32Array(b);
    for (let i = 0; i < b; i++) {
      const row = order[(start + i) % n];
      ey[i] = labels[row];
      for (let j = 0; j < f; j++) ex[i * f + j] = bytes[row * f + j] / 255;
    }
    expectClose(await gpu.read(x), ex, { atol: 1e-7, rtol: 0 }, 'x');
    expect([...(await gpu.readU32(y))]).toEqual([...ey]);
  });
});
