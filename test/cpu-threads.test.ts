// The CPU backend on several threads (client/worker/threaded-backend.ts over node/cpu-lanes.ts):
// a task split across 1, 2 and 3 worker threads gives the one-thread backend's gradient and loss
// to float tolerance, on an MLP, a small CNN and a tiny transformer; local mode's inner steps on
// threads follow the same parameters; a batch that does not divide evenly is covered whole.
import { afterEach, describe, expect, test } from 'vitest';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { splitRows, ThreadedCpuBackend } from '../client/worker/threaded-backend.ts';
import { CpuThreadPool } from '../node/cpu-lanes.ts';
import type { OptimizerConfig } from '../shared/reference/optimizer.ts';
import { expectClose } from './helpers/check-op.ts';
import { CNN_CASE, MLP_CASE, modelOf, sourceOf, startParams, taskIndices, TRANSFORMER_CASE } from './helpers/local-cases.ts';
import { expectSplitsMatch } from './helpers/lane-splits.ts';

const open: ThreadedCpuBackend[] = [];
afterEach(() => {
  for (const b of open.splice(0)) b.dispose();
});

describe('splitRows', () => {
  test('contiguous parts that cover the batch, at most one row apart', () => {
    expect(splitRows(7, 3)).toEqual([3, 2, 2]);
    expect(splitRows(2, 3)).toEqual([1, 1]);
    expect(splitRows(64, 4)).toEqual([16, 16, 16, 16]);
  });
});

describe('a task split across threads gives the same gradient', () => {
  test.for([
    { c: MLP_CASE, batch: 7 },
    { c: CNN_CASE, batch: 5 },
    { c: TRANSFORMER_CASE, batch: 4 },
  ])('$c.name: 1, 2 and 3 threads on a batch of $batch', async ({ c, batch }) => {
    await expectSplitsMatch(c, batch, (threads, lc, maxBatch, paramCount) => new CpuThreadPool(threads, lc.layers, lc.inShape, maxBatch, paramCount), open);
  });
});

describe('local mode on threads', () => {
  test('three AdamW inner steps on 2 threads end where the one-thread backend ends', async () => {
    const c = CNN_CASE;
    const model = modelOf(c);
    const opt: OptimizerConfig = { kind: 'adamw', lr: 0.01, weightDecay: 0.1 };
    const one = new LayerCpuBackend(model, 4);
    const two = new ThreadedCpuBackend(model, 4, new CpuThreadPool(2, c.layers, c.inShape, 4, model.paramCount));
    open.push(two);
    const start = startParams(model, 8);
    one.setParams(start);
    two.setParams(start);
    for (let s = 0; s < 3; s++) {
      const { x, labels } = await sourceOf(c).batch(taskIndices(4, 20 + s));
      const l1 = await one.innerStep(x, labels, 4, opt);
      const l2 = await two.innerStep(x, labels, 4, opt);
      expect(l2).toBeCloseTo(l1, 5);
    }
    const end1 = await one.readParams();
    const end2 = await two.readParams();
    expect(end1.some((p, i) => p !== start[i])).toBe(true);
    expectClose(end2, end1, { atol: 1e-5, rtol: 1e-4 }, 'parameters after 3 steps');
  });
});

describe('threads in the page under the work cap', () => {
  test('the cap bounds the threads and the duty cycle: at 50 % of 8 cores, 4 threads all the time', async () => {
    const { dutyFor, pageThreads } = await import('../client/worker/web-lanes.ts');
    expect(pageThreads(1, 8)).toBe(8);
    expect(pageThreads(0.5, 8)).toBe(4);
    expect(dutyFor(0.5, 4, 8)).toBe(1);
    // 30 % of 8 cores: 2 threads, each at most 100 % of the time: 2 of the 2.4 cores allowed.
    expect(pageThreads(0.3, 8)).toBe(2);
    expect(pageThreads(0.3, 8) * dutyFor(0.3, 2, 8)).toBeLessThanOrEqual(0.3 * 8);
    // One core, or a cap below one core's share: one thread for part of the time.
    expect(pageThreads(0.5, 1)).toBe(1);
    expect(dutyFor(0.5, 1, 1)).toBe(0.5);
    expect(pageThreads(0.1, 4)).toBe(1);
    expect(dutyFor(0.1, 1, 4)).toBeCloseTo(0.4);
  });
});
