// Spot checks across backends in real Chromium: a WebGPU tab and a CPU tab train a short run with
// every task checked by the other tab. Their gradients of the same examples differ only in the last
// bits (float32 sums in another order), well within the agreement tolerance: neither is ever struck.
// The largest relative difference seen is what docs/security.md's calibration reports.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { AGREEMENT_TOLERANCE } from '../server/verification/replication.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let tabs: HeadlessWorkers;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({
    pagesDir,
    // Every task checked, whatever the record: the two tabs check each other all run long.
    verification: { policy: { newProbability: 1, floor: 1, decay: 1 } },
    defaultRun: {
      dataset: 'mnist-10k',
      model: { kind: 'mlp', layers: [784, 32, 10] },
      optimizer: { kind: 'sgd', lr: 0.1 },
      aggregation: { rule: 'mean' },
      batchPerTask: 32,
      sync: { taskSizing: 'fixed', minWorkers: 2 },
      evalEvery: 100,
      stop: { maxRounds: 12 },
    },
  });
  tabs = await HeadlessWorkers.launch(coord.url);
}, 180_000);

afterAll(async () => {
  await tabs?.closeAll();
  await coord?.close();
});

test('a WebGPU tab and a CPU tab check each other\'s every task for a whole run and neither is struck', async () => {
  const scheduler = coord.app.crowdtrain.scheduler;
  const run = [...scheduler.runs.values()][0];
  const [gpuTab] = await Promise.all([tabs.add('backend=webgpu'), tabs.add('backend=cpu')]);
  expect(await tabs.text(gpuTab, '#backend')).toBe('WebGPU');
  await waitFor(() => run.state === 'completed', 180_000, 'the checked run to finish its 12 rounds');
  const { stats, workers, bans } = scheduler.verification.report(run.id);
  console.log(`WebGPU vs CPU: ${stats.agreed} checks agreed, largest relative L2 difference ${stats.maxAgreeingDifference.toExponential(2)}; disagreements ${stats.disagreements} (smallest ${stats.minDisagreeingDifference})`);
  expect(bans).toEqual([]);
  expect(workers.map((w) => w.backend).sort()).toEqual(['cpu', 'webgpu']);
  for (const w of workers) expect(w.strikes, `${w.backend} tab`).toBe(0);
  expect(stats.disagreements).toBe(0);
  expect(stats.agreed).toBeGreaterThanOrEqual(6);
  // Both backends computed: results of the two differ, but by far less than the tolerance.
  expect(stats.maxAgreeingDifference).toBeGreaterThan(0);
  expect(stats.maxAgreeingDifference).toBeLessThan(AGREEMENT_TOLERANCE.none! / 10);
  expect(run.counters.rejected).toBe(0);
}, 300_000);
