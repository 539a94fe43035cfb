// Synchronous data parallelism: splitting each round's batch across workers gives the same
// parameters as one worker taking the whole batch, and the coordinator keeps its invariants
// as workers come and go.
import { afterEach, describe, expect, test } from 'vitest';
import type { RunSpecInput } from '../shared/run-spec.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { expectClose } from './helpers/check-op.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const ROUNDS = 6;
let open: { coord?: TestCoordinator; workers: WorkerClient[] } = { workers: [] };
afterEach(async () => {
  for (const w of open.workers) w.stop();
  await open.coord?.close();
  open = { workers: [] };
});

async function trainWith(workers: number, spec: RunSpecInput): Promise<Float32Array> {
  const folded: number[] = [];
  const coord = await startCoordinator({ defaultRun: { ...spec, sync: { minWorkers: workers, roundDeadlineMs: 30_000 } }, onFold: (_run, _v, r) => folded.push(r.samples) });
  open.coord = coord;
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  for (let i = 0; i < workers; i++) open.workers.push(startCpuWorker(coord.url));
  await waitFor(() => run.state === 'completed', 60_000, `${ROUNDS} rounds with ${workers} workers`);
  expect(run.version).toBe(ROUNDS);
  // Every round folded one result per worker, the batch split between them.
  expect(folded).toHaveLength(ROUNDS * workers);
  expect(folded.reduce((a, b) => a + b, 0)).toBe(ROUNDS * 64);
  return run.params.slice();
}

describe('equivalence', () => {
  test.for(['adam', 'momentum'] as const)('%s: 2 workers x half batch == 1 worker x whole batch', async (kind) => {
    // The identity holds for the example-weighted mean (a trusted grid's rule), not the robust default.
    const spec: RunSpecInput = { globalBatch: 64, optimizer: { kind, lr: kind === 'adam' ? 1e-3 : 0.05 }, aggregation: { rule: 'mean' }, seed: 5, evalEvery: 1000, stop: { maxRounds: ROUNDS } };
    const one = await trainWith(1, spec);
    await open.coord!.close();
    for (const w of open.workers) w.stop();
    open = { workers: [] };
    const two = await trainWith(2, spec);
    expectClose(two, one, { atol: 1e-6, rtol: 1e-4 }, `${kind} parameters`);
    // And they moved: the test would pass vacuously if nothing trained.
    const { initMlpParams } = await import('../shared/model.ts');
    const init = initMlpParams({ layers: [784, 128, 10], activation: 'relu' }, 5);
    expect(one.some((v, i) => Math.abs(v - init[i]) > 1e-4)).toBe(true);
  });
});

describe('workers coming and going', () => {
  test('a worker that leaves mid-run loses no examples and the run goes on; every folded result matches its round', async () => {
    const mismatches: string[] = [];
    const coord = await startCoordinator({
      defaultRun: { batchPerTask: 32, evalEvery: 1000, sync: { minWorkers: 1, roundDeadlineMs: 5000 }, stop: { maxRounds: 40 } },
      onFold: (run, roundVersion, r) => {
        if (r.version !== roundVersion || run.version !== roundVersion) mismatches.push(`${r.taskId}: result v${r.version}, round v${roundVersion}, run v${run.version}`);
      },
    });
    open.coord = coord;
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    const a = startCpuWorker(coord.url);
    const b = startCpuWorker(coord.url);
    open.workers.push(a, b);
    await waitFor(() => run.version >= 10, 30_000, '10 rounds');
    b.stop();
    const c = startCpuWorker(coord.url);
    open.workers.push(c);
    await waitFor(() => run.state === 'completed', 60_000, 'the run to complete');
    expect(mismatches).toEqual([]);
    expect(c.stats.tasksDone).toBeGreaterThan(0);
    expect(coord.app.crowdtrain.scheduler.workersOf(run.id)).toHaveLength(2);
    const listed = (await coord.app.inject(`/api/runs/${run.id}`)).json();
    expect(listed).toMatchObject({ id: run.id, state: 'completed', version: 40, workers: 2 });
    expect(listed.loss).toBeLessThan(2.3);
  });
});
