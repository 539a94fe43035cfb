// Every matmul variant, in every layout training uses, against the CPU reference in real Chromium
// WebGPU, on awkward shapes (1, 7, 33, 129, 517: not multiples of any tile or block) and on the
// MLP's training shapes; plus binding ranges, oversized bindings and the tuner's cache.
import { afterAll, describe, expect, test } from 'vitest';
import { MATMUL_VARIANTS, matmul, type MatmulShape } from '../client/gpu/ops/matmul.ts';
import { chosenMatmulVariant, clearMatmulTuning, tuneMatmul } from '../client/gpu/matmul-tuner.ts';
import { matmulRef } from '../shared/reference/matmul.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { checkOp, expectClose, type Tolerance } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/**
 * Inputs are uniform in [-1, 1), so an output is a sum of K terms of size <= 1 and float32
 * rounding in a different summation order grows like sqrt(K): atol 2e-5·sqrt(K) is ~40x the
 * error seen at K = 784, while a wrong index or a missed tail is off by O(1).
 */
const tolerance = (k: number): Tolerance => ({ atol: 2e-5 * Math.sqrt(k) + 1e-6, rtol: 1e-4 });

const LAYOUTS = [
  { layout: 'NN', transA: false, transB: false },
  { layout: 'TN', transA: true, transB: false },
  { layout: 'NT', transA: false, transB: true },
];

// [m, n, k]. 20x36x44 and 517x36x68 are vec4-aligned in some layouts with M or N tails; 36x44x517
// is aligned for Aᵀ·B with a K tail (K is then not a row length).
const AWKWARD: [number, number, number][] = [
  [1, 1, 1],
  [7, 7, 7],
  [33, 33, 33],
  [129, 129, 129],
  [517, 33, 129],
  [33, 129, 517],
  [20, 36, 44],
  [36, 44, 517],
  [517, 36, 68],
];

// The MLP 784-128-10 at batch 64: forward x·W1ᵀ, dW1 = dYᵀ·x, dx = dY·W1, and the 10-wide layer.
const MLP: (MatmulShape & { what: string })[] = [
  { what: 'fc1 forward x[64,784]·W1[128,784]ᵀ', m: 64, n: 128, k: 784, transB: true },
  { what: 'fc1 dW1 = dY[64,128]ᵀ·x[64,784]', m: 128, n: 784, k: 64, transA: true },
  { what: 'fc1 dx = dY[64,128]·W1[128,784]', m: 64, n: 784, k: 128 },
  { what: 'fc2 forward h[64,128]·W2[10,128]ᵀ', m: 64, n: 10, k: 128, transB: true },
  { what: 'fc2 dW2 = dY[64,10]ᵀ·h[64,128]', m: 10, n: 128, k: 64, transA: true },
  { what: 'fc2 dh = dY[64,10]·W2[10,128]', m: 64, n: 128, k: 10 },
];

const cases = MATMUL_VARIANTS.flatMap((variant) => [
  ...LAYOUTS.flatMap(({ layout, transA, transB }) =>
    AWKWARD.map(([m, n, k]) => ({ variant, layout, m, n, k, transA, transB, what: `${m}x${n}x${k}` })),
  ),
  ...MLP.map((s) => ({ variant, layout: `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'}`, transA: !!s.transA, transB: !!s.transB, m: s.m, n: s.n, k: s.k, what: s.what })),
  // Aᵀ·Bᵀ is not used in training but is supported: one aligned and one ragged shape.
  ...[
    [33, 129, 517],
    [36, 20, 44],
  ].map(([m, n, k]) => ({ variant, layout: 'TT', m, n, k, transA: true, transB: true, what: `${m}x${n}x${k}` })),
]);

function inputs(s: MatmulShape, seed: number): { a: Float32Array; b: Float32Array } {
  const rng = createRng(seed);
  return { a: randomUniform(rng, s.m * s.k), b: randomUniform(rng, s.k * s.n) };
}

const created: GPUBuffer[] = [];
afterAll(() => created.splice(0).forEach((b) => b.destroy()));

describe('matmul kernels vs matmulRef', () => {
  test.for(cases)('$variant $layout $what', async ({ variant, m, n, k, transA, transB }) => {
    const gpu = await testGpu();
    const { a, b } = inputs({ m, n, k }, m * 1009 + n * 31 + k + (transA ? 5 : 0) + (transB ? 11 : 0));
    await checkOp({
      ref: () => ({ c: matmulRef(a, b, m, n, k, transA, transB) }),
      gpu: async () => {
        const bufs = [gpu.upload(a, 'a'), gpu.upload(b, 'b'), gpu.buffer(m * n * 4, 'c')];
        created.push(...bufs);
        gpu.submit([matmul(gpu, { a: bufs[0], b: bufs[1], c: bufs[2], m, n, k, transA, transB, variant })]);
        const c = await gpu.read(bufs[2]);
        bufs.forEach((x) => x.destroy());
        created.splice(created.length - 3, 3);
        return { c };
      },
      tol: tolerance(k),
    });
  });
});

describe('matmul bindings', () => {
  // Ranges at 256-byte offsets, with NaN in every gap: reading or writing a single float outside
  // a range shows up as NaN in C or as a changed gap. A and B share one buffer; C has its own,
  // since WebGPU forbids one buffer being bound both read-only and writable in a dispatch.
  test.for([
    { variant: 'reg8x4', m: 7, n: 5, k: 3, transA: false, transB: true }, // scalar loads, sizes not multiples of 16
    { variant: 'reg8x8', m: 33, n: 36, k: 44, transA: false, transB: false }, // vec4 loads
    { variant: 'reg4x4', m: 36, n: 44, k: 517, transA: true, transB: false }, // vec4 loads, K tail
    { variant: 'tiled', m: 17, n: 9, k: 33, transA: true, transB: true },
  ])('$variant ranges at 256-byte offsets, m=$m n=$n k=$k', async ({ variant, m, n, k, transA, transB }) => {
    const gpu = await testGpu();
    const { a, b } = inputs({ m, n, k }, 77 + m);
    const align = (bytes: number): number => Math.ceil(bytes / 256) * 256;
    const offA = 256;
    const offB = offA + align(m * k * 4) + 256;
    const operands = new Float32Array((offB + align(k * n * 4) + 256) / 4).fill(NaN);
    operands.set(a, offA / 4);
    operands.set(b, offB / 4);
    const offC = 512;
    const before = new Float32Array((offC + align(m * n * 4) + 256) / 4).fill(NaN);
    const ab = gpu.upload(operands, 'operands');
    const cb = gpu.upload(before, 'result');
    created.push(ab, cb);
    gpu.submit([
      matmul(gpu, {
        a: { buffer: ab, offset: offA, size: m * k * 4 },
        b: { buffer: ab, offset: offB, size: k * n * 4 },
        c: { buffer: cb, offset: offC, size: m * n * 4 },
        m, n, k, transA, transB, variant,
      }),
    ]);
    const after = await gpu.read(cb);
    expectClose(after.subarray(offC / 4, offC / 4 + m * n), matmulRef(a, b, m, n, k, transA, transB), tolerance(k), 'c');
    const outside = [...after.subarray(0, offC / 4), ...after.subarray(offC / 4 + m * n)];
    expect(outside.every(Number.isNaN), 'values around the C range are untouched').toBe(true);
  });

  // Whole buffers larger than the matrices (as pooled buffers are), NaN past the data: kernels
  // must stay inside the logical M x K, K x N extents, tails included.
  test.for(MATMUL_VARIANTS.flatMap((variant) => LAYOUTS.map((l) => ({ variant, ...l }))))(
    '$variant $layout whole oversized buffers with NaN past the data',
    async ({ variant, transA, transB }) => {
      const gpu = await testGpu();
      const [m, n, k] = [36, 44, 517];
      const { a, b } = inputs({ m, n, k }, 4242);
      const pad = (x: Float32Array): Float32Array => {
        const out = new Float32Array(x.length + 100).fill(NaN);
        out.set(x);
        return out;
      };
      const bufs = [gpu.upload(pad(a)), gpu.upload(pad(b)), gpu.buffer((m * n + 100) * 4)];
      created.push(...bufs);
      gpu.submit([matmul(gpu, { a: bufs[0], b: bufs[1], c: bufs[2], m, n, k, transA, transB, variant })]);
      expectClose(await gpu.read(bufs[2], m * n), matmulRef(a, b, m, n, k, transA, transB), tolerance(k), 'c');
    },
  );
});

describe('matmul with accumulate adds into C', () => {
  // C starts as a known matrix and two products are added in turn, as a weight gradient is summed
  // over micro-batches: C0 + A1·B1 + A2·B2, in both the vec4 and scalar-load flavours.
  test.for(
    MATMUL_VARIANTS.flatMap((variant) => [
      { variant, layout: 'TN', m: 33, n: 17, k: 7, transA: true, transB: false },
      { variant, layout: 'TN', m: 36, n: 44, k: 20, transA: true, transB: false },
      { variant, layout: 'NT', m: 7, n: 129, k: 33, transA: false, transB: true },
      { variant, layout: 'NN', m: 20, n: 36, k: 44, transA: false, transB: false },
    ]),
  )('$variant $layout $m x $n x $k', async ({ variant, m, n, k, transA, transB }) => {
    const gpu = await testGpu();
    const first = inputs({ m, n, k }, 11 * m + n);
    const second = inputs({ m, n, k }, 13 * m + k);
    const c0 = randomUniform(createRng(m + n + k), m * n);
    const bufs = [gpu.upload(first.a), gpu.upload(first.b), gpu.upload(second.a), gpu.upload(second.b), gpu.upload(c0)];
    created.push(...bufs);
    gpu.submit([
      matmul(gpu, { a: bufs[0], b: bufs[1], c: bufs[4], m, n, k, transA, transB, variant, accumulate: true }),
      matmul(gpu, { a: bufs[2], b: bufs[3], c: bufs[4], m, n, k, transA, transB, variant, accumulate: true }),
    ]);
    const p1 = matmulRef(first.a, first.b, m, n, k, transA, transB);
    const p2 = matmulRef(second.a, second.b, m, n, k, transA, transB);
    const expected = c0.map((v, i) => v + p1[i] + p2[i]);
    expectClose(await gpu.read(bufs[4], m * n), expected, tolerance(2 * k), 'c');
  });
});

describe('matmul tuner', () => {
  test('picks a known variant per layout, caches it per adapter, and matmul() then uses it', async () => {
    const gpu = await testGpu();
    clearMatmulTuning();
    const shapes: MatmulShape[] = [
      { m: 64, n: 64, k: 128, transB: true },
      { m: 64, n: 128, k: 64, transA: true },
      { m: 64, n: 128, k: 64 },
    ];
    const t0 = performance.now();
    const choices = await tuneMatmul(gpu, shapes);
    const tuneMs = performance.now() - t0;
    expect(Object.keys(choices).sort()).toEqual(['nn', 'nt', 'tn']);
    for (const v of Object.values(choices)) expect(MATMUL_VARIANTS).toContain(v);
    expect(chosenMatmulVariant(gpu, false, true)).toBe(choices.nt);
    expect(chosenMatmulVariant(gpu, true, false)).toBe(choices.tn);
    expect(JSON.parse(localStorage.getItem('crowdtrain.matmul-tuning') ?? '{}')).toMatchObject({
      [[gpu.info.vendor, gpu.info.architecture, gpu.info.device, gpu.info.description].join('|')]: { choices },
    });

    // Cached: the second call measures nothing and returns the same choice.
    const t1 = performance.now();
    expect(await tuneMatmul(gpu, shapes)).toEqual(choices);
    expect(performance.now() - t1).toBeLessThan(Math.max(50, tuneMs / 10));

    const c = gpu.buffer(64 * 128 * 4);
    created.push(c);
    const d = matmul(gpu, { a: gpu.buffer(64 * 64 * 4), b: gpu.buffer(64 * 128 * 4), c, m: 64, n: 128, k: 64, transA: true });
    expect(d.label).toContain(`matmul_${choices.tn}_tn`);
    clearMatmulTuning();
    expect(localStorage.getItem('crowdtrain.matmul-tuning')).toBeNull();
  });
});
