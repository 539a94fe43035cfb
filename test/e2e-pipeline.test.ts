// End to end in real Chromium: contributor tabs train MNIST with the model's layers cut into
// 2 pipeline stages and 2 replicas (4 tabs); one stage tab is closed mid-run and the run
// completes. One tab is forced onto WebGPU so that both stage backends take part.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let tabs: HeadlessWorkers;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({
    pagesDir,
    defaultRun: {
      name: 'mnist-pipeline',
      dataset: 'mnist-10k',
      model: { layers: [784, 128, 64, 10], activation: 'relu' },
      parallelism: { stages: 2, replicas: 'auto', microBatches: 4 },
      sync: { minWorkers: 2, roundDeadlineMs: 20_000 },
      evalEvery: 5,
      stop: { targetAccuracy: 0.9 },
    },
  });
  tabs = await HeadlessWorkers.launch(coord.url);
}, 180_000);

afterAll(async () => {
  await tabs?.closeAll();
  await coord?.close();
});

test('P=2 x D=2 in 4 tabs reaches 0.90; a stage tab closed mid-run does not stop it', async () => {
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  const scheduler = coord.app.crowdtrain.scheduler;
  const all = await Promise.all([tabs.add('backend=webgpu'), tabs.add(), tabs.add(), tabs.add()]);
  expect(await tabs.text(all[0], '#backend')).toBe('WebGPU');

  // Two replicas of two stages: every tab holds a stage, and the page says which.
  await waitFor(() => scheduler.pipeline.lastStats.get(run.id)?.replicas === 2, 60_000, 'a round with 2 replicas');
  const placements = scheduler.workersOf(run.id).map((w) => w.placement);
  expect(placements.map((p) => `${p?.replica}:${p?.stage}`).sort()).toEqual(['0:0', '0:1', '1:0', '1:1']);
  await expect.poll(() => tabs.text(all[0], '#placement'), { timeout: 10_000 }).toMatch(/^Holds layers? [\d–]+ of the model: stage [12] of 2 in replica [12]/);

  // Every stage worker reports what it allocated (test/stage-gpu.browser.test.ts bounds the GPU's).
  await waitFor(() => scheduler.workersOf(run.id).every((w) => (w.allocatedBytes ?? 0) > 0), 30_000, 'allocation reports');

  await waitFor(() => run.version >= 20, 120_000, '20 rounds');
  const gone = all[1];
  await tabs.close(gone);
  await waitFor(() => scheduler.workersOf(run.id).length === 3, 10_000, 'the closed tab to leave');
  await waitFor(() => run.state === 'completed', 300_000, 'the run to reach 0.90 with 3 tabs');
  expect(run.accuracy).toBeGreaterThanOrEqual(0.9);
  expect(run.counters.rejected).toBe(0);
  // Every committed round folded every stage of every replica it had (no partial commit).
  const stats = scheduler.pipeline.lastStats.get(run.id)!;
  expect(stats.stages).toBe(2);
}, 500_000);
