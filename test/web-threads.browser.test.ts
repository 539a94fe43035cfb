// The page's CPU backend on Web Workers (client/worker/web-lanes.ts) in real Chromium: a task split
// across 1, 2 and 3 workers gives the one-thread gradient to float tolerance, with parameters
// copied to each worker (the test page is not cross-origin isolated) and set again between tasks.
import { afterEach, describe, expect, test } from 'vitest';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { ThreadedCpuBackend } from '../client/worker/threaded-backend.ts';
import { WebWorkerPool } from '../client/worker/web-lanes.ts';
import { expectClose } from './helpers/check-op.ts';
import { CNN_CASE, MLP_CASE, modelOf, sourceOf, startParams, taskIndices, TRANSFORMER_CASE } from './helpers/local-cases.ts';

const TOL = { atol: 1e-6, rtol: 1e-4 };
const open: ThreadedCpuBackend[] = [];
afterEach(() => {
  for (const b of open.splice(0)) b.dispose();
});

describe('Web Worker lanes', () => {
  test.for([
    { c: MLP_CASE, batch: 7 },
    { c: CNN_CASE, batch: 5 },
    { c: TRANSFORMER_CASE, batch: 4 },
  ])('$c.name: 1, 2 and 3 workers on a batch of $batch', async ({ c, batch }) => {
    const model = modelOf(c);
    const params = startParams(model, 5);
    const { x, labels } = await sourceOf(c).batch(taskIndices(batch, 11));
    const one = new LayerCpuBackend(model, batch);
    one.setParams(params);
    const want = await one.gradients(x, labels, batch);
    const wantGrads = want.grads.slice();
    const moved = params.map((p) => p * 0.5);
    one.setParams(moved);
    const wantMoved = (await one.gradients(x, labels, batch)).grads.slice();
    for (const threads of [1, 2, 3]) {
      const b = new ThreadedCpuBackend(model, batch, new WebWorkerPool(threads, c.layers, c.inShape, batch, model.paramCount));
      open.push(b);
      b.setParams(params);
      const got = await b.gradients(x, labels, batch);
      expectClose(got.grads, wantGrads, TOL, `${threads} worker(s)`);
      expect(got.loss).toBeCloseTo(want.loss, 5);
      b.setParams(moved);
      expectClose((await b.gradients(x, labels, batch)).grads, wantMoved, TOL, `${threads} worker(s) after new parameters`);
    }
  });
});
