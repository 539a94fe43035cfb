// Pooling kernels (shaders/pool.wgsl) against shared/layers' maxpool2d and avgpool2d references
// in real Chromium WebGPU, on odd sizes, leftover rows and columns, and overlapping windows.
import { describe, test } from 'vitest';
import { avgPool, avgPoolBackward, maxPool, maxPoolBackward, poolDims, type PoolOp } from '../client/gpu/ops/pool.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';
import { runLayerRef } from './helpers/layer-ref.ts';

// Max pooling picks and routes values: exact, argmax included. Average pooling sums K² float32
// values on the GPU and float64 values in the reference: a few ulp.
const EXACT: Tolerance = { atol: 0, rtol: 0 };
const AVG: Tolerance = { atol: 1e-6, rtol: 1e-5 };

type Outputs = Record<string, Float32Array>;

interface Case {
  b: number;
  c: number;
  h: number;
  w: number;
  size: number;
  stride: number;
  /** Values on a coarse grid, so windows hold ties (the first one wins, as PyTorch). */
  ties?: boolean;
}

const cases: Case[] = [
  { b: 1, c: 1, h: 1, w: 1, size: 1, stride: 1 },
  { b: 2, c: 3, h: 7, w: 7, size: 2, stride: 2 }, // a leftover row and column no window reaches
  { b: 1, c: 2, h: 9, w: 7, size: 3, stride: 2 }, // overlapping windows
  { b: 3, c: 5, h: 33, w: 8, size: 4, stride: 1 },
  { b: 2, c: 4, h: 12, w: 12, size: 2, stride: 2, ties: true },
  { b: 1, c: 1, h: 5, w: 11, size: 2, stride: 3 }, // gaps between windows
];

describe.for(['max', 'avg'] as PoolOp[])('%spool2d vs reference', (op) => {
  test.for(cases)('B=$b [$c,$h,$w] size=$size stride=$stride', async ({ b, c, h, w, size, stride, ties }) => {
    const gpu = await testGpu();
    const shape = { batch: b, channels: c, height: h, width: w, size, stride };
    const { ho, wo } = poolDims(shape);
    const rng = createRng(b * 1000 + c * 100 + h * 10 + w + size);
    const x = randomUniform(rng, b * c * h * w, -2, 2);
    if (ties) for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i]);
    const dy = randomUniform(rng, b * c * ho * wo);
    const outN = b * c * ho * wo;
    const cfg = { kind: `${op}pool2d`, size, stride };
    await checkOp({
      ref: (): Outputs => {
        const r = runLayerRef(cfg, [c, h, w], [], x, b, dy);
        return op === 'max' ? { y: r.y, argmax: Float32Array.from(r.cache as Int32Array), dx: r.dx } : { y: r.y, dx: r.dx };
      },
      gpu: async (): Promise<Outputs> => {
        const xb = gpu.upload(x);
        const dyb = gpu.upload(dy);
        const y = gpu.buffer(outN * 4);
        const dx = gpu.buffer(x.byteLength);
        // dx starts non-zero: backward must overwrite, not add.
        gpu.write(dx, new Float32Array(x.length).fill(7));
        if (op === 'max') {
          const argmax = gpu.buffer(outN * 4);
          gpu.submit([maxPool(gpu, { ...shape, x: xb, y, argmax }), maxPoolBackward(gpu, { ...shape, dy: dyb, argmax, dx })]);
          return { y: await gpu.read(y, outN), argmax: Float32Array.from(await gpu.readU32(argmax, outN)), dx: await gpu.read(dx, x.length) };
        }
        gpu.submit([avgPool(gpu, { ...shape, x: xb, y }), avgPoolBackward(gpu, { ...shape, dy: dyb, dx })]);
        return { y: await gpu.read(y, outN), dx: await gpu.read(dx, x.length) };
      },
      tol: op === 'max' ? EXACT : AVG,
    });
  });
});
