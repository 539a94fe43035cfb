// Spot checks across backends in real Chromium: a WebGPU tab and a CPU tab train a short run with
// every task checked by the other tab, once on an MLP and once on a small CNN. Their gradients of
// the same examples differ only in the last bits (float32 sums in another order), far within the
// agreement tolerance: neither is ever struck. The largest relative difference seen on each model
// is what docs/security.md's calibration reports.
import { resolve } from 'node:path';
import { afterEach, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { AGREEMENT_TOLERANCE } from '../server/verification/replication.ts';
import type { RunSpecInput } from '../shared/run-spec.ts';
import { describeCoordinator, startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator | undefined;
let tabs: HeadlessWorkers | undefined;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
}, 180_000);

afterEach(async () => {
  await tabs?.closeAll();
  await coord?.close();
  tabs = undefined;
  coord = undefined;
});

const models: [string, RunSpecInput['model'], number][] = [
  ['an MLP 784-32-10', { kind: 'mlp', layers: [784, 32, 10] }, 12],
  [
    'the example CNN (two conv2d, maxpool, dense)',
    { layers: [{ kind: 'conv2d', out: 8, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'conv2d', out: 16, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }] },
    10,
  ],
];

test.each(models)('%s: a WebGPU tab and a CPU tab check each other\'s every task and neither is struck', async (name, model, rounds) => {
  coord = await startCoordinator({
    pagesDir,
    // Every task checked, whatever the record: the two tabs check each other all run long.
    verification: { policy: { newProbability: 1, floor: 1, decay: 1 } },
    defaultRun: { dataset: 'mnist-10k', model, optimizer: { kind: 'sgd', lr: 0.1 }, aggregation: { rule: 'mean' }, batchPerTask: 32, sync: { taskSizing: 'fixed', minWorkers: 2 }, evalEvery: 100, stop: { maxRounds: rounds } },
  });
  tabs = await HeadlessWorkers.launch(coord.url);
  const scheduler = coord.app.crowdtrain.scheduler;
  const run = [...scheduler.runs.values()][0];
  const [gpuTab] = await Promise.all([tabs.add('backend=webgpu'), tabs.add('backend=cpu')]);
  expect(await tabs.text(gpuTab, '#backend')).toBe('WebGPU');
  await waitFor(() => run.state === 'completed', 120_000, `the checked run to finish its ${rounds} rounds`, async () => `${describeCoordinator(coord!)}\n${await tabs!.describe()}`);
  const { stats, workers, bans } = scheduler.verification.report(run.id);
  console.log(`${name}, WebGPU vs CPU: ${stats.agreed} checks agreed, largest relative L2 difference ${stats.maxAgreeingDifference.toExponential(2)}; disagreements ${stats.disagreements} (smallest ${stats.minDisagreeingDifference})`);
  expect(bans).toEqual([]);
  expect(workers.map((w) => w.backend).sort()).toEqual(['cpu', 'webgpu']);
  for (const w of workers) expect(w.strikes, `${w.backend} tab`).toBe(0);
  expect(stats.disagreements).toBe(0);
  expect(stats.agreed).toBeGreaterThanOrEqual(rounds);
  // The two backends' results differ (both computed), but by far less than the tolerance.
  expect(stats.maxAgreeingDifference).toBeGreaterThan(0);
  expect(stats.maxAgreeingDifference).toBeLessThan(AGREEMENT_TOLERANCE.none! / 10);
  expect(run.counters.rejected).toBe(0);
}, 180_000);
