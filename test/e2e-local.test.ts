// Local mode end to end in real Chromium: contributor tabs, one forced onto WebGPU, fetch their
// first parameters as a snapshot over HTTP, take inner AdamW steps on their backend, send int8
// pseudo-gradients and follow int8 deltas; the run reaches its target and every tab's results
// are folded.
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { describeCoordinator, startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let tabs: HeadlessWorkers;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({
    pagesDir,
    defaultRun: {
      dataset: 'mnist-10k',
      model: { kind: 'mlp', layers: [784, 64, 10] },
      optimizer: { lr: 2e-3 },
      batchPerTask: 32,
      sync: { mode: 'local', innerSteps: 4, minWorkers: 2 },
      compression: 'int8',
      evalEvery: 2,
      stop: { targetAccuracy: 0.88 },
    },
  });
  tabs = await HeadlessWorkers.launch(coord.url);
}, 180_000);

afterAll(async () => {
  await tabs?.closeAll();
  await coord?.close();
});

test('a WebGPU tab and a CPU tab train a local-mode run with int8 both ways to its target', async () => {
  const scheduler = coord.app.crowdtrain.scheduler;
  const run = [...scheduler.runs.values()][0];
  const [gpuTab] = await Promise.all([tabs.add('backend=webgpu'), tabs.add('backend=cpu')]);
  expect(await tabs.text(gpuTab, '#backend')).toBe('WebGPU');
  await waitFor(() => run.state === 'completed', 240_000, 'the local-mode run to reach 0.88', async () => `${describeCoordinator(coord)}\n${await tabs.describe()}`);
  expect(run.accuracy).toBeGreaterThanOrEqual(0.88);
  expect(run.counters.rejected).toBe(0);
  // Both tabs' pseudo-gradients were folded.
  const workers = scheduler.workersOf(run.id);
  expect(workers.map((w) => w.hello.backend).sort()).toEqual(['cpu', 'webgpu']);
  for (const w of workers) expect(w.tasksDone, `${w.hello.backend} tab`).toBeGreaterThan(0);
  // Their first parameters came over HTTP, the rest as int8 deltas and int8 results.
  expect(run.traffic.httpOut).toBeGreaterThanOrEqual(2 * 4 * run.paramCount);
  expect(run.trafficSummary().upBytesPerExample!).toBeLessThan((4 * run.paramCount) / (4 * 32));
}, 400_000);
