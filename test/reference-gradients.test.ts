// The CPU references of every non-matmul kernel family checked on their own terms: gradients
// against central finite differences (perturbation sums in float64), the optimizers against
// hand-computed two-step traces, and the compression codecs against known values and bounds.
import { describe, expect, test } from 'vitest';
import { activate, activateGrad, biasActBackwardRef, biasActRef, type Activation } from '../shared/reference/bias-act.ts';
import { optimizerStepRef, type OptimizerConfig } from '../shared/reference/optimizer.ts';
import {
  dequantizeInt8Ref,
  f16BitsToF32,
  f32ToF16Bits,
  packF16Ref,
  quantizeInt8Ref,
  roundHalfEven,
  unpackF16Ref,
} from '../shared/reference/quantize.ts';
import { colSumRef, reduceRef } from '../shared/reference/reduce.ts';
import { softmaxCrossEntropyRef } from '../shared/reference/softmax-ce.ts';
import { createRng, randomUniform, type Rng } from '../shared/rng.ts';

/** Σ w·f(x) in float64: the scalar whose gradient wrt x is backward(w). */
function weighted(f: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < f.length; i++) s += f[i] * w[i];
  return s;
}

/** Central differences of `loss` at x (float64 copies), one coordinate at a time. */
function finiteDifferences(x: ArrayLike<number>, loss: (x: Float64Array) => number, h: number): Float64Array {
  const probe = Float64Array.from(x);
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    probe[i] = x[i] + h;
    const up = loss(probe);
    probe[i] = x[i] - h;
    const down = loss(probe);
    probe[i] = x[i];
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

function expectNear(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) {
      expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Values in ±range that stay more than `gap` from the points in `avoid`-space (relu's kink). */
function awayFromZero(rng: Rng, n: number, range: number, gap: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    while (Math.abs(v) < gap) v = rng.uniform(-range, range);
    out[i] = v;
  }
  return out;
}

describe('bias-act reference: gradients by finite differences', () => {
  // h = 1e-2: truncation error O(h²·act''') ≈ 1e-4 for gelu, float32 output rounding ≈ 1e-6.
  test.for([
    { act: 'none', rows: 3, cols: 5, atol: 1e-5 },
    { act: 'relu', rows: 4, cols: 7, atol: 1e-5 },
    { act: 'gelu', rows: 4, cols: 7, atol: 3e-4 },
  ] as { act: Activation; rows: number; cols: number; atol: number }[])('$act $rows x $cols: dx and dbias', ({ act, rows, cols, atol }) => {
    const rng = createRng(17 + cols);
    const bias = randomUniform(rng, cols, -0.5, 0.5);
    // x + bias kept 0.05 away from 0, so relu's kink is not inside [x - h, x + h].
    const z = awayFromZero(rng, rows * cols, 4, 0.05);
    const x = z.map((v, i) => v - bias[i % cols]);
    const w = randomUniform(rng, rows * cols);
    const h = 1e-2;
    const dx = biasActBackwardRef(x, bias, w, rows, cols, act);
    const fdX = finiteDifferences(x, (xp) => weighted(biasActRef(xp, bias, rows, cols, act), w), h);
    expectNear(dx, fdX, atol, 1e-4, 'dx');
    // The bias gradient is the column sum of dx.
    const fdBias = finiteDifferences(bias, (bp) => weighted(biasActRef(x, bp, rows, cols, act), w), h);
    expectNear(colSumRef(dx, rows, cols), fdBias, atol * rows, 1e-4, 'dbias');
  });

  test('gelu matches PyTorch tanh-GELU values and saturates without overflow', () => {
    // torch.nn.functional.gelu(torch.tensor([1., -1., 3., -3.]), approximate='tanh')
    expectNear([1, -1, 3, -3].map((v) => activate(v, 'gelu')), [0.8411920070648193, -0.15880800783634186, 2.9963626861572266, -0.003637375729158521], 1e-7, 1e-6, 'gelu');
    for (const v of [10.5, -10.5, 1e20, -1e20, 3e38, -3e38]) {
      expect(Number.isFinite(activate(v, 'gelu'))).toBe(true);
      expect(activateGrad(v, 'gelu')).toBe(v > 0 ? 1 : 0);
    }
    expect(activate(-1e20, 'gelu')).toBe(0);
    // Continuous across the switch at |v| = 10 (the tanh form's value there is relu's within 1e-30).
    expect(Math.abs(activate(10, 'gelu') - 10)).toBeLessThan(1e-30);
    expect(Math.abs(activate(-10, 'gelu'))).toBeLessThan(1e-30);
    expect(activateGrad(0, 'relu')).toBe(0);
  });
});

describe('softmax cross-entropy reference', () => {
  test.for([
    { rows: 1, classes: 1 },
    { rows: 3, classes: 7 },
    { rows: 5, classes: 33 },
  ])('B=$rows V=$classes: dlogits is the gradient of the mean loss', ({ rows, classes }) => {
    const rng = createRng(rows * 100 + classes);
    const logits = randomUniform(rng, rows * classes, -3, 3);
    const labels = Uint32Array.from({ length: rows }, () => rng.int(classes));
    const { dlogits, loss, meanLoss } = softmaxCrossEntropyRef(logits, labels, rows, classes);
    const fd = finiteDifferences(logits, (lp) => softmaxCrossEntropyRef(lp, labels, rows, classes).meanLoss, 1e-4);
    expectNear(dlogits, fd, 1e-6, 1e-4, 'dlogits');
    // Per-row loss against the textbook formula, and the mean against the rows.
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c]);
      expect(loss[r]).toBeCloseTo(-Math.log(Math.exp(logits[r * classes + labels[r]]) / sum), 5);
    }
    expect(meanLoss).toBeCloseTo(loss.reduce((a, b) => a + b, 0) / rows, 5);
  });

  test('logits of ±1e4 stay finite and exact', () => {
    const logits = new Float32Array([1e4, -1e4, 0, -1e4, 1e4, 1e4]);
    const { loss, dlogits, meanLoss } = softmaxCrossEntropyRef(logits, new Uint32Array([1, 2]), 2, 3);
    expect(loss[0]).toBe(2e4); // log(1 + e^-2e4 + e^-1e4) - (-1e4 - 1e4)
    expect(loss[1]).toBeCloseTo(Math.LN2, 6); // two equal maxima, label on one of them
    expect(meanLoss).toBeCloseTo((2e4 + Math.LN2) / 2, 2);
    expectNear(dlogits, [0.5, -0.5, 0, 0, 0.25, -0.25], 1e-7, 0, 'dlogits');
  });

  test('a label >= V is ignored', () => {
    const r = softmaxCrossEntropyRef(new Float32Array([1, 2, 3, 4]), new Uint32Array([0, 9]), 2, 2);
    expect(r.loss[1]).toBe(0);
    expect([...r.dlogits.slice(2)]).toEqual([0, 0]);
    expect(r.meanLoss).toBeCloseTo(r.loss[0] / 2, 6);
  });
});

describe('reduce reference: gradients by finite differences', () => {
  test.for([
    { rows: 1, cols: 1 },
    { rows: 7, cols: 3 },
    { rows: 4, cols: 33 },
  ])('colSum and reduce sum/mean, $rows x $cols', ({ rows, cols }) => {
    const rng = createRng(rows * 7 + cols);
    const x = randomUniform(rng, rows * cols);
    const wc = randomUniform(rng, cols);
    const wr = randomUniform(rng, rows);
    // Linear maps: the gradient of Σ w·colSum(x) wrt x[r, c] is w[c]; of Σ w·sum(x) it is w[r] (/ C for mean).
    const fdCol = finiteDifferences(x, (xp) => weighted(colSumRef(xp, rows, cols), wc), 1e-2);
    expectNear(fdCol, Float64Array.from(x, (_, i) => wc[i % cols]), 1e-5, 1e-5, 'd colSum');
    const fdSum = finiteDifferences(x, (xp) => weighted(reduceRef(xp, rows, cols, 'sum'), wr), 1e-2);
    expectNear(fdSum, Float64Array.from(x, (_, i) => wr[Math.floor(i / cols)]), 1e-5, 1e-5, 'd sum');
    const fdMean = finiteDifferences(x, (xp) => weighted(reduceRef(xp, rows, cols, 'mean'), wr), 1e-2);
    expectNear(fdMean, Float64Array.from(x, (_, i) => wr[Math.floor(i / cols)] / cols), 1e-5, 1e-5, 'd mean');
  });

  test('known values', () => {
    const x = new Float32Array([1, -2, 3, 4, 5, -6]);
    expect([...colSumRef(x, 2, 3)]).toEqual([5, 3, -3]);
    expect([...reduceRef(x, 2, 3, 'sum')]).toEqual([2, 3]);
    expect([...reduceRef(x, 2, 3, 'mean')].map((v) => +v.toFixed(6))).toEqual([0.666667, 1]);
    expect([...reduceRef(x, 2, 3, 'max')]).toEqual([3, 5]);
    expect([...reduceRef(new Float32Array([-5, -7]), 1, 2, 'max')]).toEqual([-5]);
  });
});

describe('optimizer reference: two-step traces computed by hand', () => {
  // p0 = [1, -2], g1 = [0.5, 0.25], g2 = [-1, 0.5], lr = 0.1, μ = 0.9, β = (0.9, 0.999), ε = 1e-8.
  // sgd, wd 0.1:  p1 = 1 - 0.1·(0.5 + 0.1) = 0.94;  p2 = 0.94 - 0.1·(-1 + 0.094) = 1.0306
  //               p1 = -2 - 0.1·(0.25 - 0.2) = -2.005;  p2 = -2.005 - 0.1·(0.5 - 0.2005) = -2.03495
  // momentum, wd 0.1: buf1 = g' = 0.6, p1 = 0.94; g' = -0.906, buf2 = 0.54 - 0.906 = -0.366, p2 = 0.9766
  //               buf1 = 0.05, p1 = -2.005; g' = 0.2995, buf2 = 0.045 + 0.2995 = 0.3445, p2 = -2.03945
  // adam, wd 0.1: g' = 0.6, m1 = 0.06, v1 = 0.00036, p1 = 1 - 0.1·0.6/(0.6 + 1e-8) = 0.90000000167
  //               g' = -1 + 0.09 = -0.91, m2 = 0.054 - 0.091 = -0.037, v2 = 0.00035964 + 0.0008281 = 0.00118774,
  //               p2 = p1 - 0.1·(-0.037/0.19) / (√(0.00118774/0.001999) + 1e-8) = 0.92526352
  //               (second coordinate likewise: -2.09999998, -2.18471197)
  // adamw, wd 0.01: p1 = 1·(1 - 0.001) - 0.1·0.5/(0.5 + 1e-8) = 0.899000002; m1 = 0.05, v1 = 0.00025
  //               p2 = 0.899000002·0.999 - 0.1·(-0.055/0.19)/(√(0.00124975/0.001999) + 1e-8) = 0.93471135
  const p0 = [1, -2];
  const g = [
    [0.5, 0.25],
    [-1, 0.5],
  ];
  test.for([
    { config: { kind: 'sgd', lr: 0.1, weightDecay: 0.1 }, p1: [0.94, -2.005], p2: [1.0306, -2.03495], m2: undefined, v2: undefined },
    { config: { kind: 'momentum', lr: 0.1, weightDecay: 0.1 }, p1: [0.94, -2.005], p2: [0.9766, -2.03945], m2: [-0.366, 0.3445], v2: undefined },
    { config: { kind: 'adam', lr: 0.1, weightDecay: 0.1 }, p1: [0.9000000016666666, -2.09999998], p2: [0.9252635194456063, -2.1847119740372833], m2: [-0.037, 0.0335], v2: [0.00118774, 8.65975e-5] },
    { config: { kind: 'adamw', lr: 0.1 }, p1: [0.899000002, -2.097999996], p2: [0.9347113542385652, -2.192420196144805], m2: [-0.055, 0.0725], v2: [0.00124975, 0.0003124375] },
  ] as { config: OptimizerConfig; p1: number[]; p2: number[]; m2?: number[]; v2?: number[] }[])('$config.kind', ({ config, p1, p2, m2, v2 }) => {
    const params = new Float32Array(p0);
    // Garbage state before step 1 must not matter: t = 1 takes the state as zero.
    const state = { m: new Float32Array([7, 7]), v: new Float32Array([7, 7]) };
    optimizerStepRef(params, new Float32Array(g[0]), state, config, 1);
    expectNear(params, p1, 0, 1e-6, 'p after step 1');
    optimizerStepRef(params, new Float32Array(g[1]), state, config, 2);
    expectNear(params, p2, 0, 1e-6, 'p after step 2');
    if (m2) expectNear(state.m, m2, 1e-9, 1e-5, 'm after step 2');
    if (v2) expectNear(state.v, v2, 1e-12, 1e-5, 'v after step 2');
  });

  test('rejects t < 1 and missing state', () => {
    expect(() => optimizerStepRef(new Float32Array(1), new Float32Array(1), {}, { kind: 'sgd', lr: 1 }, 0)).toThrow(/t must be/);
    expect(() => optimizerStepRef(new Float32Array(1), new Float32Array(1), {}, { kind: 'adam', lr: 1 }, 1)).toThrow(/needs state m/);
  });
});

describe('int8 quantization reference', () => {
  test('known values: max maps to ±127, ties round to even, a zero block has scale 0', () => {
    const { q, scales } = quantizeInt8Ref(new Float32Array([1, -0.5, 0.25, 0, 0, 0, 0, 0, -3]), 4);
    expect([...scales]).toEqual([Math.fround(1 / 127), 0, Math.fround(3 / 127)]);
    // -0.5 / fround(1/127) is exactly -63.5 in float32: rounds to -64; 31.75 rounds to 32.
    expect([...q]).toEqual([127, -64, 32, 0, 0, 0, 0, 0, -127]);
    expect([roundHalfEven(2.5), roundHalfEven(3.5), roundHalfEven(-2.5), roundHalfEven(-0.5), roundHalfEven(1.4)]).toEqual([2, 4, -2, -0, 1]);
  });

  test.for([
    { n: 1, block: 1 },
    { n: 517, block: 256 },
    { n: 1000, block: 7 },
    { n: 3000, block: 1024 },
  ])('round trip within scale/2: N=$n block=$block', ({ n, block }) => {
    const rng = createRng(n + block);
    const x = Float32Array.from({ length: n }, () => rng.normal() * 10 ** rng.uniform(-3, 1));
    const { q, scales } = quantizeInt8Ref(x, block);
    const back = dequantizeInt8Ref(q, scales, block);
    for (let i = 0; i < n; i++) {
      const scale = scales[Math.floor(i / block)];
      // scale/2 plus the float32 rounding of x/scale and of q·scale.
      expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(scale / 2 + 2e-7 * Math.abs(x[i]));
    }
  });
});

describe('f16 reference', () => {
  test.for([
    { v: 1, h: 0x3c00 },
    { v: -2, h: 0xc000 },
    { v: 65504, h: 0x7bff },
    { v: 65519, h: 0x7bff }, // below the tie with 65536: rounds down
    { v: 65520, h: 0x7c00 }, // the tie rounds to even, which is infinity
    { v: 1e6, h: 0x7c00 },
    { v: -1e6, h: 0xfc00 },
    { v: Infinity, h: 0x7c00 },
    { v: -Infinity, h: 0xfc00 },
    { v: NaN, h: 0x7e00 },
    { v: 1 / 3, h: 0x3555 },
    { v: 0.1, h: 0x2e66 },
    { v: 2 ** -14, h: 0x0400 }, // smallest normal
    { v: 2 ** -24, h: 0x0001 }, // smallest subnormal
    { v: 2 ** -25, h: 0x0000 }, // tie between 0 and 2^-24: even is 0
    { v: 1.5 * 2 ** -25, h: 0x0001 },
    { v: 2 ** -14 - 2 ** -25, h: 0x0400 }, // largest subnormal + half ulp: tie, rounds up to the smallest normal
    { v: 1 + 2 ** -11, h: 0x3c00 }, // tie: even mantissa stays
    { v: 1 + 3 * 2 ** -11, h: 0x3c02 }, // tie: odd mantissa rounds up
    { v: -0, h: 0x8000 },
    { v: 1e-10, h: 0x0000 },
  ])('f32ToF16Bits($v) = $h', ({ v, h }) => {
    expect(f32ToF16Bits(v)).toBe(h);
  });

  test('every finite half converts back to itself; specials decode', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads are canonicalised
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
    }
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  test('round trip within 2^-11 relative (normal range), 2^-25 absolute (subnormal range), odd count packs', () => {
    const rng = createRng(5);
    const x = Float32Array.from({ length: 2001 }, () => (rng.float() < 0.5 ? -1 : 1) * 2 ** rng.uniform(-27, 15.9));
    const packed = packF16Ref(x);
    expect(packed.length).toBe(1001);
    expect(packed[1000] >>> 16).toBe(0); // the ragged tail's padding half
    const back = unpackF16Ref(packed, x.length);
    for (let i = 0; i < x.length; i++) {
      const bound = Math.abs(x[i]) >= 2 ** -14 ? 2 ** -11 * Math.abs(x[i]) : 2 ** -25;
      expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(bound);
    }
    expect([...packF16Ref([1, -2, 0.5])]).toEqual([0xc0003c00, 0x3800]);
  });
});
