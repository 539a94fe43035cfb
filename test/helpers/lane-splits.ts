// One check for the CPU backend on several lanes, in Node (worker threads) and in Chromium (Web
// Workers) alike: a task split across 1, 2 and 3 lanes gives the one-thread gradient and loss to
// float tolerance, and parameters set again between tasks reach every lane.
import { expect } from 'vitest';
import { LayerCpuBackend } from '../../client/worker/backend.ts';
import { ThreadedCpuBackend, type LanePool } from '../../client/worker/threaded-backend.ts';
import { expectClose } from './check-op.ts';
import { modelOf, sourceOf, startParams, taskIndices, type LocalCase } from './local-cases.ts';

// Each lane averages its rows and the parts are summed with their weights: the same sums in another order.
export const SPLIT_TOL = { atol: 1e-6, rtol: 1e-4 };

export type MakePool = (threads: number, c: LocalCase, batch: number, paramCount: number) => LanePool;

export async function expectSplitsMatch(c: LocalCase, batch: number, makePool: MakePool, opened: ThreadedCpuBackend[]): Promise<void> {
  const model = modelOf(c);
  const params = startParams(model, 5);
  const { x, labels } = await sourceOf(c).batch(taskIndices(batch, 11));
  const one = new LayerCpuBackend(model, batch);
  one.setParams(params);
  const want = await one.gradients(x, labels, batch);
  const wantGrads = want.grads.slice();
  expect(wantGrads.some((g) => g !== 0)).toBe(true);
  const moved = params.map((p) => p * 0.5);
  one.setParams(moved);
  const wantMoved = (await one.gradients(x, labels, batch)).grads.slice();
  for (const threads of [1, 2, 3]) {
    const b = new ThreadedCpuBackend(model, batch, makePool(threads, c, batch, model.paramCount));
    opened.push(b);
    b.setParams(params);
    const got = await b.gradients(x, labels, batch);
    expectClose(got.grads, wantGrads, SPLIT_TOL, `${threads} lane(s)`);
    expect(got.loss).toBeCloseTo(want.loss, 5);
    b.setParams(moved);
    expectClose((await b.gradients(x, labels, batch)).grads, wantMoved, SPLIT_TOL, `${threads} lane(s) after new parameters`);
  }
}
