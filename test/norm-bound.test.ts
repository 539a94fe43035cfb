// The learned norm bound (server/accumulators/norm-bound.ts): what it learns, what it clips and
// refuses, that a hostile minority cannot raise it, that it survives a checkpoint, and, in a run,
// the scenario that the fixed bound of 10⁴ let through: a worker answering with random values of
// norm 9,000.
import { describe, expect, test } from 'vitest';
import { aggregationContext, createAccumulator } from '../server/accumulator.ts';
import { NORM_BOUND_FACTOR, NORM_BOUND_WINDOW, NormBound, REFUSE_MULTIPLE } from '../server/accumulators/norm-bound.ts';
import { encodeCheckpoint, restoreCheckpoint } from '../server/checkpoint.ts';
import { decodeSafetensors } from '../shared/safetensors.ts';
import { DatasetRegistry } from '../server/data/registry.ts';
import { EventLog, type RunEvent } from '../server/event-log.ts';
import { Run } from '../server/run.ts';
import { createRng } from '../shared/rng.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { sharedDataDir } from './helpers/coordinator.ts';
import { MemoryGrid } from './helpers/memory-grid.ts';

const norm = (v: Float32Array) => Math.hypot(...v);

/** A vector of `length` values with norm `n`. */
function ofNorm(length: number, n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const v = Float32Array.from({ length }, () => rng.normal());
  const s = n / norm(v);
  return v.map((x) => x * s);
}

describe('the learned bound', () => {
  test('nothing learned before the first round; then 3 × the median of the rounds\' median norms, refusing above 100 ×', () => {
    const b = new NormBound();
    expect(b.bound).toBe(Infinity);
    expect(b.refuseAbove(1e4)).toBe(1e4);
    for (const n of [1, 1.2, 0.8, 50]) b.admit(n);
    b.endRound();
    expect(b.bound).toBeCloseTo(NORM_BOUND_FACTOR * 1.1, 9);
    expect(b.refuseAbove(1e4)).toBeCloseTo(REFUSE_MULTIPLE * NORM_BOUND_FACTOR * 1.1, 9);
    expect(b.admit(2)).toBe(1);
    expect(b.admit(6.6)).toBeCloseTo(0.5, 9);
    expect(b.clipped).toBe(1);
    // A dropped round teaches nothing.
    b.admit(1000);
    b.dropRound();
    expect(b.bound).toBeCloseTo(3.3, 9);
  });

  test('a hostile third at 1000 × the honest norm does not move it; it follows honest norms as they shrink', () => {
    const b = new NormBound();
    for (let r = 0; r < 30; r++) {
      for (const n of [1, 0.9, 1.1, 1.05]) b.admit(n);
      b.admit(1000);
      b.admit(1000);
      b.endRound();
    }
    expect(b.bound).toBeLessThanOrEqual(NORM_BOUND_FACTOR * 1.1);
    for (let r = 0; r < NORM_BOUND_WINDOW; r++) {
      for (const n of [0.1, 0.09, 0.11]) b.admit(n);
      b.endRound();
    }
    expect(b.bound).toBeCloseTo(NORM_BOUND_FACTOR * 0.1, 6);
  });

  test.each(['mean', 'centered-clip'])('%s: a result above the bound is folded scaled down to it; the first round is clipped at 3 × its own median', (rule) => {
    const length = 64;
    const context = aggregationContext({}, { rule: rule as 'mean', trim: 0.2, radius: 'auto', iterations: 1, workerMomentum: 0 }, length);
    // Round 1: four results of norm 1 and one of norm 100, in no learned bound yet: the big one is cut to 3.
    const first = createAccumulator(rule, length, context);
    const big = ofNorm(length, 100, 1);
    for (let i = 0; i < 4; i++) first.add(ofNorm(length, 1, 10 + i), 10, 0.5, `w${i}`);
    first.add(big, 10, 0.5, 'x');
    expect(first.results).toBe(5);
    expect(first.weight).toBe(50);
    first.mean();
    expect(context.normBound!.clipped).toBe(1);
    expect(context.normBound!.bound).toBeCloseTo(3, 5);
    // Round 2 with the mean alone: exactly big × 3/100 / 1 result.
    const second = createAccumulator(rule, length, context);
    second.add(big, 10, 0.5, 'x');
    if (rule === 'mean') {
      const got = second.mean();
      expect(norm(got)).toBeCloseTo(3, 4);
      got.forEach((x, i) => expect(x).toBeCloseTo(big[i] * 0.03, 5));
    } else second.mean();
    expect(context.normBound!.clipped).toBe(2);
  });

  test('the bound is saved with the run\'s checkpoint and restored', () => {
    const spec = parseRunSpec({ dataset: 'mnist-10k', model: { kind: 'mlp', layers: [784, 8, 10] } });
    const info = new DatasetRegistry(sharedDataDir).get('mnist-10k')!.info;
    const run = new Run(spec, info, 'saved');
    const bound = aggregationContext(run, run.spec.aggregation, run.paramCount).normBound!;
    for (const n of [2, 4]) {
      bound.admit(n);
      bound.endRound();
    }
    const bytes = encodeCheckpoint(run);
    expect(JSON.parse(decodeSafetensors(bytes).metadata.norm_bound)).toEqual({ medians: [2, 4] });
    const again = new Run(spec, info, 'restored');
    restoreCheckpoint(again, bytes);
    expect(aggregationContext(again, again.spec.aggregation, again.paramCount).normBound!.bound).toBeCloseTo(NORM_BOUND_FACTOR * 3, 9);
  });
});

describe('in a run', () => {
  const spec = (aggregation: RunSpecInput['aggregation']): RunSpecInput => ({
    dataset: 'mnist-10k',
    model: { kind: 'mlp', layers: [784, 32, 10] },
    optimizer: { kind: 'adam', lr: 3e-3 },
    batchPerTask: 32,
    seed: 5,
    evalEvery: 100,
    sync: { taskSizing: 'fixed', minWorkers: 3 },
    aggregation,
    stop: { maxRounds: 100 },
  });

  async function train(hostile: boolean): Promise<{ accuracy: number; events: RunEvent[] }> {
    const events: RunEvent[] = [];
    const log = new EventLog();
    log.subscribe((e) => events.push(e));
    const g = new MemoryGrid(parseRunSpec(spec({ rule: 'mean' })), new DatasetRegistry(sharedDataDir).get('mnist-10k')!, { evalExamples: 2000, events: log });
    for (let i = 0; i < 3; i++) {
      const w = g.addWorker(`w${i}`);
      if (hostile && i === 2) {
        let seed = 100;
        w.tamper = (bytes, meta) => {
          const noise = ofNorm(bytes.byteLength / 4, 9000, seed++);
          return { bytes: new Uint8Array(noise.buffer), meta };
        };
      }
    }
    await g.runUntil(() => false);
    expect(g.run.version).toBe(100);
    g.close();
    return { accuracy: g.run.accuracy!, events };
  }

  test('a worker answering random values of norm 9,000 (accepted by the fixed 10⁴ bound): clipped in the first round, refused from the second; the mean run ends within 3 points of the clean one', async () => {
    const clean = await train(false);
    const attacked = await train(true);
    const refused = attacked.events.filter((e) => e.kind === 'reject');
    expect(refused).toHaveLength(99);
    expect(refused.every((e) => e.workerId === 'w2' && /gradient norm 9\.00e\+3 exceeds the bound/.test(e.message))).toBe(true);
    expect(clean.accuracy).toBeGreaterThan(0.8);
    expect(Math.abs(attacked.accuracy - clean.accuracy), `clean ${clean.accuracy}, attacked ${attacked.accuracy}`).toBeLessThanOrEqual(0.03);
  });
});
