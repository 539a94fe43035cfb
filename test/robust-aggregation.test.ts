// Robust aggregation: the coordinate-wise trimmed mean and median against hand computations,
// centered clipping against its formula (with each worker's momentum across rounds), a
// sign-flipping minority that drags the mean far off while centered clipping holds near the
// honest mean, coded results decoded into each rule exactly, malformed ones refused with nothing
// changed, and the `aggregation` field of a run spec.
import { describe, expect, test } from 'vitest';
import { createRng } from '../shared/rng.ts';
import { parseRunSpec, RunSpecError, type Aggregation } from '../shared/run-spec.ts';
import { parseRunSpecText, runSpecToYaml } from '../shared/run-spec-text.ts';
import { encodeUpdate, foldUpdate, UpdateCodecError, type UpdateCoding } from '../shared/update-codec.ts';
import { aggregationContext, createAccumulator, type Accumulator, type AccumulatorContext } from '../server/accumulator.ts';
import { RoundSum } from '../server/aggregator.ts';
import { AggregationState, MOMENTUM_KEPT_ROUNDS } from '../server/accumulators/aggregation-state.ts';
import { CoordinateMedian } from '../server/accumulators/median.ts';
import { NormClipped } from '../server/accumulators/norm-bound.ts';

const settings = (over: Partial<Aggregation> = {}): Aggregation => ({ rule: 'mean', trim: 0.2, radius: 'auto', iterations: 1, workerMomentum: 0.9, ...over });
const contextOf = (length: number, over: Partial<Aggregation> = {}): AccumulatorContext => ({ aggregation: settings(over), state: new AggregationState(length) });

/** One round of `rule` over `rows` (one result per row, worker ids w0, w1, …), equal examples unless given. */
function aggregate(rule: string, rows: number[][], over: Partial<Aggregation> = {}, examples?: number[]): Float32Array {
  const acc = createAccumulator(rule, rows[0].length, contextOf(rows[0].length, { rule: rule as Aggregation['rule'], ...over }));
  rows.forEach((r, i) => acc.add(Float32Array.from(r), examples?.[i] ?? 10, 0.5, `w${i}`));
  return acc.mean();
}

/** The same rule by sorting: each coordinate's values sorted, `cut` dropped from each end, the rest averaged. */
function sortedReference(rows: Float32Array[], reduce: (sorted: number[]) => number): number[] {
  return Array.from(rows[0], (_, j) => reduce(rows.map((r) => r[j]).sort((a, b) => a - b)));
}

describe('coordinate-wise trimmed mean', () => {
  test('odd count: the extremes of each coordinate are cut, ties included', () => {
    // trim 0.2 of 5 cuts one value from each end.
    const rows = [
      [1, 3, 0, -2],
      [5, 3, 0, -2],
      [2, 3, 0, 7],
      [100, 1, 0, -2],
      [-50, 3, 0, -2],
    ];
    // (1 + 5 + 2) / 3; three 3s of four; zeros; three -2s kept, the 7 and one -2 cut.
    expect([...aggregate('trimmed-mean', rows)]).toEqual([Math.fround(8 / 3), 3, 0, -2]);
  });

  test('even count: ⌊trim·n⌋ from each end, and trim below 1/n cuts nothing', () => {
    const rows = [[4], [1], [3], [10]];
    expect([...aggregate('trimmed-mean', rows, { trim: 0.25 })]).toEqual([3.5]); // (3 + 4) / 2
    expect([...aggregate('trimmed-mean', rows, { trim: 0.2 })]).toEqual([4.5]); // ⌊0.8⌋ = 0: the plain mean
    expect([...aggregate('trimmed-mean', rows, { trim: 0.49 })]).toEqual([3.5]); // ⌊1.96⌋ = 1
    expect([...aggregate('trimmed-mean', [[7]], { trim: 0.4 })]).toEqual([7]);
  });

  test('each result counts once whatever its examples, and the loss is trimmed the same way', () => {
    const acc = createAccumulator('trimmed-mean', 1, contextOf(1, { trim: 0.25 }));
    [1, 2, 3, 400].forEach((v, i) => acc.add(Float32Array.of(v), i === 3 ? 10_000 : 1, [0.1, 0.2, 0.3, 1e9][i], `w${i}`));
    expect([...acc.mean()]).toEqual([2.5]);
    expect(acc.meanLoss()).toBeCloseTo(0.25, 12);
    expect(acc.weight).toBe(10_003);
    expect(acc.results).toBe(4);
  });

  test('random results over several blocks of coordinates equal the sorting reference', () => {
    const rng = createRng(3);
    for (const [n, length] of [[25, 517], [8, 1], [7, 129]]) {
      const rows = Array.from({ length: n }, () => Float32Array.from({ length }, () => Math.round(rng.normal() * 4) / 2)); // many ties
      const cut = Math.floor(0.2 * n);
      const want = sortedReference(rows, (s) => s.slice(cut, n - cut).reduce((a, b) => a + b, 0) / (n - 2 * cut));
      const got = aggregate('trimmed-mean', rows.map((r) => [...r]));
      want.forEach((w, j) => expect(got[j]).toBeCloseTo(w, 5));
    }
  });
});

describe('coordinate-wise median', () => {
  test('odd count: the middle value', () => {
    expect([...aggregate('median', [[1, 2], [5, 2], [2, 9], [100, 2], [-50, -1]])]).toEqual([2, 2]);
  });

  test('even count: the mean of the two middle values, ties and all', () => {
    expect([...aggregate('median', [[4, 2, 1, 0], [1, 2, 1, 0], [3, 2, 9, 0], [10, 7, 9, 0]])]).toEqual([3.5, 2, 5, 0]);
    expect([...aggregate('median', [[-1.5]])]).toEqual([-1.5]);
    expect([...aggregate('median', [[1], [2]])]).toEqual([1.5]);
  });

  test('random results over several blocks of coordinates equal the sorting reference', () => {
    const rng = createRng(4);
    for (const [n, length] of [[25, 517], [6, 33], [2, 300]]) {
      const rows = Array.from({ length: n }, () => Float32Array.from({ length }, () => Math.round(rng.normal() * 4) / 2));
      const want = sortedReference(rows, (s) => (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2));
      // (+ 0: the sign of a zero median is whichever zero the selection picked)
      expect(Array.from(aggregate('median', rows.map((r) => [...r])), (x) => x + 0)).toEqual(want.map((x) => Math.fround(x) + 0));
    }
  });

  test("a worker's second result of the round joins its first (example-weighted): one vote, not two", () => {
    const acc = createAccumulator('median', 1, contextOf(1));
    acc.add(Float32Array.of(1), 10, 1, 'a');
    acc.add(Float32Array.of(2), 10, 1, 'b');
    acc.add(Float32Array.of(100), 10, 1, 'hostile');
    acc.add(Float32Array.of(100), 30, 3, 'hostile'); // its vote is (10·100 + 30·100) / 40 = 100, still one of three
    expect([...acc.mean()]).toEqual([2]);
    expect([acc.results, (acc as CoordinateMedian).voters, acc.weight]).toEqual([4, 3, 60]);
    const merged = createAccumulator('median', 1, contextOf(1));
    merged.add(Float32Array.of(0), 10, 1, 'a');
    merged.add(Float32Array.of(4), 30, 1, 'a');
    expect([...merged.mean()]).toEqual([3]); // (10·0 + 30·4) / 40
  });
});

/** Centered clipping by the formula, in doubles: L iterations from v over the votes x. */
function clipReference(x: number[][], v0: number[], radius: number | 'auto', iterations: number): number[] {
  const v = [...v0];
  const n = x.length;
  for (let it = 0; it < iterations; it++) {
    const dist = x.map((xi) => Math.hypot(...xi.map((a, j) => a - v[j])));
    const sorted = [...dist].sort((a, b) => a - b);
    const tau = radius === 'auto' ? (n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2) : radius;
    const step = v.map((vj, j) => x.reduce((s, xi, i) => s + (xi[j] - vj) * Math.min(1, tau / dist[i]), 0) / n);
    step.forEach((s, j) => (v[j] += s));
  }
  return v;
}

describe('centered clipping', () => {
  const votes = [
    [1, 0, 0],
    [0, 2, 0],
    [0.5, 0.5, 0.5],
    [-30, 40, 0], // far away: clipped to the radius
  ];

  test.each([
    [1.5, 1],
    [1.5, 3],
    ['auto', 1],
    ['auto', 4],
  ] as const)('radius %s, %i iteration(s): the formula from zero, then from the previous aggregate', (radius, iterations) => {
    const context = contextOf(3, { rule: 'centered-clip', radius, iterations, workerMomentum: 0 });
    const round = (rows: number[][]) => {
      const acc = createAccumulator('centered-clip', 3, context);
      rows.forEach((r, i) => acc.add(Float32Array.from(r), 1 + i, 0.1 * i, `w${i}`));
      return acc.mean();
    };
    const first = round(votes);
    const want1 = clipReference(votes, [0, 0, 0], radius, iterations);
    want1.forEach((w, j) => expect(first[j]).toBeCloseTo(w, 5));
    const second = round(votes.map((r) => r.map((a) => a + 1)));
    const want2 = clipReference(votes.map((r) => r.map((a) => a + 1)), [...first], radius, iterations);
    want2.forEach((w, j) => expect(second[j]).toBeCloseTo(w, 5));
    // The far vote was shortened: the plain mean of the first round is [-7.125, 10.625, 0.125].
    expect(Math.hypot(...first)).toBeLessThan(2);
  });

  test("with momentum, each worker's momentum steps per result by its id, and the rule runs on the momenta", () => {
    const beta = 0.5;
    const context = contextOf(2, { rule: 'centered-clip', radius: 'auto', iterations: 2, workerMomentum: beta });
    const rounds: Record<string, number[]>[] = [
      { a: [1, 1], b: [3, -1], c: [100, 100] },
      { a: [2, 0], c: [100, 100] }, // b sits this round out: its momentum is kept, not decayed, and not a vote
      { a: [0, 2], b: [1, 1], c: [-100, 0] },
    ];
    const m: Record<string, number[]> = {};
    const steps: Record<string, number> = {};
    let v = [0, 0];
    for (const results of rounds) {
      const acc = createAccumulator('centered-clip', 2, context);
      for (const [id, g] of Object.entries(results)) {
        acc.add(Float32Array.from(g), 8, 0.3, id);
        steps[id] = (steps[id] ?? 0) + 1;
        m[id] = (m[id] ?? [0, 0]).map((mi, j) => beta * mi + (1 - beta) * g[j]);
      }
      // The votes are the momenta bias-corrected (m / (1 − β^k) after k results), as Adam's first moment.
      const corrected = (id: string) => m[id].map((x) => x / (1 - beta ** steps[id]));
      const got = acc.mean();
      v = clipReference(Object.keys(results).map(corrected), v, 'auto', 2);
      v.forEach((w, j) => expect(got[j]).toBeCloseTo(w, 5));
      for (const id of Object.keys(m)) [...context.state.momentumOf(id)!].forEach((x, j) => expect(x).toBeCloseTo(corrected(id)[j], 5));
    }
    expect(context.state.workers).toBe(3);
    // Without worker ids there is no momentum to keep: refused, not silently averaged.
    const acc = createAccumulator('centered-clip', 2, context);
    expect(() => acc.add(Float32Array.of(1, 1), 8, 0.3)).toThrow(/needs the id of the worker/);
  });

  test('a momentum not updated for MOMENTUM_KEPT_ROUNDS rounds is dropped; forget drops one at once', () => {
    const context = contextOf(1, { rule: 'centered-clip', workerMomentum: 0.9 });
    for (let r = 0; r <= MOMENTUM_KEPT_ROUNDS + 1; r++) {
      const acc = createAccumulator('centered-clip', 1, context);
      if (r === 0) acc.add(Float32Array.of(1), 1, 0, 'gone');
      acc.add(Float32Array.of(1), 1, 0, 'stays');
      acc.add(Float32Array.of(1), 1, 0, 'leaves');
      acc.mean();
      if (r === 0) context.state.forget('leaves');
      if (r === 1) {
        // 'stays' has had k = 2 results; 'leaves', forgotten after its first, starts from zero again.
        expect(context.state.momentumSteps('stays')).toBe(2);
        expect(context.state.momentumSteps('leaves')).toBe(1);
      }
      if (r === MOMENTUM_KEPT_ROUNDS) expect(context.state.momentumOf('gone')).toBeDefined();
    }
    expect(context.state.momentumOf('gone')).toBeUndefined();
    expect(context.state.momentumOf('stays')).toBeDefined();
    expect(context.state.workers).toBe(2);
  });

  test('a sign-flipping minority: 5 of 25 send -10 × the honest mean; the mean is dragged far off, centered clipping holds', () => {
    const length = 2000;
    const rng = createRng(11);
    // ‖μ‖ = 1, and each honest result's noise has norm about 1 too.
    const mu = Float32Array.from({ length }, () => rng.normal());
    const norm = Math.hypot(...mu);
    mu.forEach((x, j) => (mu[j] = x / norm));
    const sigma = 1 / Math.sqrt(length);
    const distance = (a: Float32Array, b: ArrayLike<number>) => Math.sqrt(a.reduce((s, x, j) => s + (x - b[j]) ** 2, 0));

    const run = (rule: string, over: Partial<Aggregation>, rounds: number) => {
      const context = contextOf(length, { rule: rule as Aggregation['rule'], ...over });
      const beta = over.workerMomentum ?? 0;
      const honestMomentum = new Float64Array(length); // the mean of the honest workers' momenta, what an honest-only round would give
      let last: Float32Array = new Float32Array(length);
      let honestMean = new Float64Array(length);
      for (let r = 0; r < rounds; r++) {
        const acc = createAccumulator(rule, length, context);
        const honest = Array.from({ length: 20 }, () => Float32Array.from(mu, (m) => m + sigma * rng.normal()));
        honestMean = new Float64Array(length);
        for (const g of honest) g.forEach((x, j) => (honestMean[j] += x / 20));
        honest.forEach((g, i) => acc.add(g, 32, 2.3, `honest-${i}`));
        for (let i = 0; i < 5; i++) acc.add(Float32Array.from(honestMean, (x) => -10 * x), 32, 2.3, `hostile-${i}`);
        honestMomentum.forEach((x, j) => (honestMomentum[j] = beta * x + (1 - beta) * honestMean[j]));
        last = acc.mean();
      }
      return { last, off: distance(last, beta > 0 ? honestMomentum : honestMean) };
    };

    const mean = run('mean', {}, 1);
    expect(mean.off).toBeGreaterThan(2); // (20 - 50)/25 = -1.2 × the honest mean: 2.2 away
    const clip = run('centered-clip', { workerMomentum: 0 }, 20);
    const clipMomentum = run('centered-clip', { workerMomentum: 0.9 }, 40);
    const clip3 = run('centered-clip', { workerMomentum: 0.9, iterations: 3 }, 40);
    // From zero, v settles where the honest pull (4/5 of the gap a) balances the hostile one (1/5 of
    // τ ≈ √(a² + noise²)): a = noise/√15, about 0.26 for raw results; momentum cuts the honest
    // noise by √((1 - β)/(1 + β)) ≈ 0.23, so a ≈ 0.06. Measured: the mean 2.25 away, centered
    // clipping 0.27, with momentum 0.059, with momentum and L = 3 0.058.
    expect(clip.off).toBeLessThan(0.35);
    expect(clipMomentum.off).toBeLessThan(0.1);
    expect(clip3.off).toBeLessThan(0.1);
  });

  test('without hostile workers, centered clipping with momentum tracks the mean of the momenta', () => {
    const length = 500;
    const rng = createRng(12);
    const context = contextOf(length, { rule: 'centered-clip', workerMomentum: 0.9 });
    const momenta = Array.from({ length: 10 }, () => new Float64Array(length));
    let got: Float32Array = new Float32Array(length);
    for (let r = 0; r < 30; r++) {
      const acc = createAccumulator('centered-clip', length, context);
      momenta.forEach((m, i) => {
        const g = Float32Array.from({ length }, () => 0.05 + rng.normal() * 0.1);
        acc.add(g, 16, 1, `w${i}`);
        m.forEach((x, j) => (m[j] = 0.9 * x + 0.1 * g[j]));
      });
      got = acc.mean();
    }
    const correction = 1 - 0.9 ** 30;
    const mean = Float64Array.from({ length }, (_, j) => momenta.reduce((s, m) => s + m[j], 0) / momenta.length / correction);
    const off = Math.sqrt(got.reduce((s, x, j) => s + (x - mean[j]) ** 2, 0));
    expect(off / Math.hypot(...mean)).toBeLessThan(0.05);
  });
});

describe('coded results', () => {
  const length = 600;
  const rng = createRng(21);
  const rows = Array.from({ length: 7 }, () => Float32Array.from({ length }, () => rng.normal() * 0.01));
  const CODINGS: UpdateCoding[] = [{ kind: 'none' }, { kind: 'fp16' }, { kind: 'int8', block: 64 }, { kind: 'topk', fraction: 0.1, block: 32 }];
  const RULES: [string, Partial<Aggregation>][] = [
    ['trimmed-mean', {}],
    ['median', {}],
    ['centered-clip', { workerMomentum: 0 }],
    ['centered-clip', { workerMomentum: 0.9, iterations: 2 }],
  ];
  const decode = (coding: UpdateCoding, bytes: Uint8Array) => {
    const out = new Float32Array(length);
    foldUpdate(coding, bytes, length, 1, out);
    return out;
  };

  describe.each(CODINGS)('$kind', (coding) => {
    const coded = rows.map((r) => encodeUpdate(coding, r));

    test.each(RULES)('%s %j decodes each result into its vote exactly as add() of the decoded values', (rule, over) => {
      const viaBytes = createAccumulator(rule, length, contextOf(length, over));
      const viaValues = createAccumulator(rule, length, contextOf(length, over));
      coded.forEach((bytes, i) => {
        viaBytes.addCoded(coding, bytes, 16, 1, `w${i}`);
        viaValues.add(decode(coding, bytes), 16, 1, `w${i}`);
      });
      const [a, b] = [viaBytes.mean(), viaValues.mean()];
      if (!over.workerMomentum) expect([...a]).toEqual([...b]);
      else {
        // Momentum folds (1 - β)·scale·q in one rounding where add() rounds the decoded value first.
        const top = Math.max(...b.map(Math.abs));
        a.forEach((x, j) => expect(Math.abs(x - b[j])).toBeLessThan(1e-6 * top));
      }
    });
  });

  /** Malformed results of each coding: a wrong length, a NaN scale, top-k indices out of order. */
  const broken = (): [UpdateCoding, Uint8Array][] => {
    const int8: UpdateCoding = { kind: 'int8', block: 64 };
    const nanScale = encodeUpdate(int8, rows[0]);
    new DataView(nanScale.buffer).setFloat32(4, NaN, true);
    const topk: UpdateCoding = { kind: 'topk', fraction: 0.1, block: 32 };
    const unordered = encodeUpdate(topk, rows[0]);
    const view = new DataView(unordered.buffer);
    const [a, b] = [view.getUint32(4, true), view.getUint32(8, true)];
    view.setUint32(4, b, true);
    view.setUint32(8, a, true);
    const fp16: UpdateCoding = { kind: 'fp16' };
    const inf = encodeUpdate(fp16, rows[0]);
    new DataView(inf.buffer).setUint16(10, 0x7c00, true);
    return [
      [{ kind: 'none' }, new Uint8Array(4 * length - 4)],
      [int8, nanScale],
      [topk, unordered],
      [fp16, inf],
    ];
  };

  test.each(RULES)('%s %j refuses a malformed result with nothing changed: its votes, its totals, the momenta, the pool', (rule, over) => {
    for (const [coding, bytes] of broken()) {
      const context = contextOf(length, over);
      const control = createAccumulator(rule, length, contextOf(length, over));
      const acc = createAccumulator(rule, length, context);
      for (const a of [acc, control]) {
        a.addCoded({ kind: 'none' }, encodeUpdate({ kind: 'none' }, rows[1]), 16, 1, 'w1');
        a.add(rows[2], 16, 1, 'w2');
      }
      const momentum = context.state.momentumOf('w1')?.slice();
      const pooled = context.state.pooled;
      for (const id of ['w1', 'new']) {
        expect(() => acc.addCoded(coding, bytes, 16, 1, id)).toThrow(UpdateCodecError);
      }
      expect([acc.results, acc.weight]).toEqual([2, 32]);
      expect(context.state.pooled).toBe(pooled + 1); // the buffer lent to the refused new vote is back
      expect(context.state.momentumOf('new')).toBeUndefined();
      if (momentum) expect([...context.state.momentumOf('w1')!]).toEqual([...momentum]);
      expect([...acc.mean()]).toEqual([...control.mean()]);
    }
  });
});

describe('the registry, the pool and the run context', () => {
  test("'mean' takes a worker id and stays the example-weighted sum, bit for bit", () => {
    const rng = createRng(31);
    const rows = Array.from({ length: 5 }, () => Float32Array.from({ length: 40 }, () => rng.normal()));
    const withIds = createAccumulator('mean', 40, contextOf(40, { rule: 'centered-clip' }));
    const plain = new RoundSum(40);
    rows.forEach((r, i) => {
      withIds.add(r, i + 1, i, `w${i}`);
      plain.add(r, i + 1, i);
    });
    expect(withIds).toBeInstanceOf(RoundSum);
    expect([...withIds.mean()]).toEqual([...plain.mean()]);
    expect(withIds.meanLoss()).toBe(plain.meanLoss());
  });

  test('centered-clip needs the run context; the others make do without one', () => {
    expect(() => createAccumulator('centered-clip', 4)).toThrow(/needs the run's context/);
    expect(createAccumulator('median', 4).results).toBe(0);
    expect(() => createAccumulator('krum', 4)).toThrow(/no accumulator named "krum"; known: mean, trimmed-mean, median, centered-clip/);
    expect(() => createAccumulator('median', 4, contextOf(5))).toThrow(/holds 5 values/);
  });

  test("a round's buffers go back to the run's pool and the next round reuses them; a dropped round gives them back too", () => {
    const context = contextOf(8, { rule: 'median' });
    const round = (n: number): Accumulator => {
      const acc = createAccumulator('median', 8, context);
      for (let i = 0; i < n; i++) acc.add(new Float32Array(8).fill(i), 1, 0, `w${i}`);
      return acc;
    };
    round(5).mean();
    expect(context.state.pooled).toBe(5);
    const second = round(3);
    expect(context.state.pooled).toBe(2);
    expect([...second.mean()]).toEqual(new Array(8).fill(1));
    expect(context.state.pooled).toBe(3); // no more than the last round used
    const dropped = round(2);
    dropped.release!();
    expect(context.state.pooled).toBe(3);
    expect(() => dropped.add(new Float32Array(8), 1, 0, 'late')).toThrow(/already aggregated/);
  });

  test('a run keeps one context while its aggregation settings stay; new settings start over', () => {
    const run = {};
    const one = aggregationContext(run, settings({ rule: 'centered-clip' }), 10);
    expect(aggregationContext(run, settings({ rule: 'centered-clip' }), 10)).toBe(one);
    expect(aggregationContext(run, settings({ rule: 'centered-clip', radius: 2 }), 10)).not.toBe(one);
    expect(aggregationContext({}, settings({ rule: 'centered-clip' }), 10)).not.toBe(one);
    const acc = createAccumulator('centered-clip', 10, one);
    // Every rule of a run sits behind the run's norm bound, which a change of rule keeps.
    expect(acc).toBeInstanceOf(NormClipped);
    expect(aggregationContext(run, settings({ rule: 'median' }), 10).normBound).toBe(one.normBound);
    expect(aggregationContext(run, settings({ rule: 'median' }), 12).normBound).not.toBe(one.normBound);
  });
});

describe('aggregation in a run spec', () => {
  const messageOf = (input: unknown) => {
    try {
      parseRunSpec(input);
    } catch (err) {
      if (err instanceof RunSpecError) return err.message;
      throw err;
    }
    throw new Error('accepted');
  };

  test("the default is centered clipping (every run is open to the public); a rule's name alone sets the rule, the rest default", () => {
    expect(parseRunSpec({}).aggregation).toEqual({ rule: 'centered-clip', trim: 0.2, radius: 'auto', iterations: 1, workerMomentum: 0 });
    expect(parseRunSpec({ aggregation: 'mean' }).aggregation.rule).toBe('mean');
    expect(parseRunSpec({ aggregation: 'median' }).aggregation).toEqual({ rule: 'median', trim: 0.2, radius: 'auto', iterations: 1, workerMomentum: 0 });
    expect(parseRunSpecText('aggregation: { rule: centered-clip, radius: 2.5, iterations: 3, workerMomentum: 0 }\n').aggregation).toEqual({ rule: 'centered-clip', trim: 0.2, radius: 2.5, iterations: 3, workerMomentum: 0 });
  });

  test.each([
    [{ aggregation: 'medain' }, 'aggregation.rule: must be one of mean, trimmed-mean, median, centered-clip (got "medain")'],
    [{ aggregation: { rule: 'trimmed-mean', trim: 0.5 } }, 'aggregation.trim: must be a number of at least 0 and below 0.5 (got 0.5)'],
    [{ aggregation: { radius: 0 } }, 'aggregation.radius: must be a number greater than 0 (got 0)'],
    [{ aggregation: { radius: 'big' } }, 'aggregation.radius: must be a number greater than 0, or auto (got "big")'],
    [{ aggregation: { iterations: 11 } }, 'aggregation.iterations: must be an integer from 1 to 10 (got 11)'],
    [{ aggregation: { workerMomentum: 1 } }, 'aggregation.workerMomentum: must be a number of at least 0 and below 1 (got 1)'],
    [{ aggregation: { rule: 'median', tau: 3 } }, 'aggregation.tau: unknown field (fields allowed in aggregation: rule, trim, radius, iterations, workerMomentum)'],
    [{ aggregation: 3 }, 'aggregation: must be a mapping with the fields rule, trim, radius, iterations, workerMomentum (got 3)'],
  ])('%j', (input, message) => {
    expect(messageOf(input)).toBe(message);
  });

  test('runSpecToYaml round-trips it, auto and numeric radius alike', () => {
    for (const aggregation of [{ rule: 'centered-clip', radius: 0.75 }, 'trimmed-mean']) {
      const spec = parseRunSpec({ aggregation });
      expect(parseRunSpecText(runSpecToYaml(spec))).toEqual(spec);
    }
  });
});
