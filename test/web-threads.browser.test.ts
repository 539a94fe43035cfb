// The page's CPU backend on Web Workers (client/worker/web-lanes.ts) in real Chromium: a task split
// across 1, 2 and 3 workers gives the one-thread gradient to float tolerance, with parameters
// copied to each worker (the test page is not cross-origin isolated) and set again between tasks.
import { afterEach, describe, test } from 'vitest';
import type { ThreadedCpuBackend } from '../client/worker/threaded-backend.ts';
import { WebWorkerPool } from '../client/worker/web-lanes.ts';
import { expectSplitsMatch } from './helpers/lane-splits.ts';
import { CNN_CASE, MLP_CASE, TRANSFORMER_CASE } from './helpers/local-cases.ts';

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
    await expectSplitsMatch(c, batch, (threads, lc, maxBatch, paramCount) => new WebWorkerPool(threads, lc.layers, lc.inShape, maxBatch, paramCount), open);
  });
});
