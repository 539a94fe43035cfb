// End to end in real Chromium: a coordinator serving the built pages and contributor tabs that
// press Contribute. Tabs come and go; the run reaches its target and never folds a result
// computed on another version. One tab is forced onto WebGPU so both backends take part.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { describeCoordinator, startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let tabs: HeadlessWorkers;
const mismatches: string[] = [];

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({
    pagesDir,
    // The run stops at 0.93, not 0.9: with speed-sized rounds the three tabs pass 0.9 in about
    // 25 rounds, before a tab that joins after round 20 is warm, and the test needs the joiner to train.
    defaultRun: { dataset: 'mnist-10k', evalEvery: 5, stop: { targetAccuracy: 0.93 } },
    onFold: (run, roundVersion, r) => {
      if (r.version !== roundVersion || run.version !== roundVersion) mismatches.push(`${r.taskId}: result v${r.version} folded into round v${roundVersion} (run v${run.version})`);
    },
  });
  tabs = await HeadlessWorkers.launch(coord.url);
}, 180_000);

afterAll(async () => {
  await tabs?.closeAll();
  await coord?.close();
});

test('3 contributor tabs reach 0.90 test accuracy while one leaves and another joins', async () => {
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  const [gpuTab, , leaver] = await Promise.all([tabs.add('backend=webgpu'), tabs.add(), tabs.add()]);
  expect(await tabs.text(gpuTab, '#backend')).toBe('WebGPU');
  expect(await tabs.text(gpuTab, '#adapter')).not.toBe('none');

  await waitFor(() => run.version >= 20, 60_000, '20 rounds with 3 tabs');
  await tabs.close(leaver);
  await waitFor(() => coord.app.crowdtrain.scheduler.workersOf(run.id).length === 2, 10_000, 'the closed tab to leave');
  const joiner = await tabs.add();
  const joinedAt = run.version;
  await waitFor(() => run.state === 'completed', 240_000, 'the run to reach 0.90', async () => `${describeCoordinator(coord)}\n${await tabs.describe()}`);

  expect(run.accuracy).toBeGreaterThanOrEqual(0.9);
  expect(mismatches).toEqual([]);
  expect(run.version).toBeGreaterThan(joinedAt);
  // The page a person looks at shows the same: their contribution and the run's accuracy.
  const contributed = await tabs.text(joiner, '#contributed');
  expect(Number(contributed.split(' ')[0].replace(/,/g, ''))).toBeGreaterThan(0);
  await expect.poll(() => tabs.text(gpuTab, '#accuracy'), { timeout: 10_000 }).toMatch(/^(9\d|100)\.\d\d %$/);
  expect(await tabs.text(gpuTab, '#run-state')).toBe('completed');
  // The REST view agrees.
  const listed = (await coord.app.inject(`/api/runs/${run.id}`)).json();
  expect(listed).toMatchObject({ state: 'completed', workers: 3 });
  expect(listed.accuracy).toBeGreaterThanOrEqual(0.9);
}, 400_000);
