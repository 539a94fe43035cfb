// Low-communication training over real sockets: Node workers (the CPU backend, through the same
// WorkerClient tabs use) fetch a snapshot over HTTP, then follow int8 deltas; local-mode results
// go up int8-coded; the coordinator counts the bytes per run and exports them. A model past the
// old 4M-parameter cap (25M) trains, its parameters and results moving in 4 MiB chunks.
import { afterEach, expect, test } from 'vitest';
import { codedBytes } from '../shared/update-codec.ts';
import { CHUNK_BYTES } from '../shared/protocol.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';

let coord: TestCoordinator | undefined;
let workers: WorkerClient[] = [];

afterEach(async () => {
  for (const w of workers) w.stop();
  workers = [];
  await coord?.close();
  coord = undefined;
});

test('local mode, int8 both ways: 3 workers reach 0.9 with a fraction of the bytes, counted per run on /api/runs and /metrics', async () => {
  coord = await startCoordinator({
    evaluation: 'inline',
    defaultRun: {
      dataset: 'mnist-10k',
      model: { kind: 'mlp', layers: [784, 64, 10] },
      optimizer: { kind: 'adamw', lr: 2e-3 },
      batchPerTask: 32,
      sync: { mode: 'local', innerSteps: 8, minWorkers: 3 },
      compression: 'int8',
      evalEvery: 2,
      stop: { targetAccuracy: 0.9, maxRounds: 200 },
    },
  });
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  workers = [0, 1, 2].map(() => startCpuWorker(coord!.url));
  await waitFor(() => run.state !== 'running', 120_000, 'the run to reach 0.9');
  expect(run.state).toBe('completed');
  expect(run.accuracy).toBeGreaterThanOrEqual(0.9);

  const summary = (await coord.app.inject(`/api/runs/${run.id}`)).json();
  const t = summary.traffic;
  const P = run.paramCount;
  // Every worker's first parameters came as one snapshot over HTTP.
  expect(t.snapshotBytes).toBeGreaterThanOrEqual(3 * 4 * P);
  // Up: one int8 pseudo-gradient per task of whole inner steps of 32 examples.
  expect(t.upBytes).toBe(run.counters.folded * codedBytes({ kind: 'int8', block: 256 }, P) + lateAndRejectedBytes(run));
  expect(t.upBytesPerExample).toBeCloseTo(t.upBytes / run.samples, 6);
  // Sync f32 with tasks of 32 examples would send 4P / 32 bytes per example up: int8 and H = 8 send far less.
  expect(t.upBytesPerExample).toBeLessThan((4 * P) / 32 / 20);
  expect(t.downBytesPerExample).toBeLessThan((4 * P) / 32 / 5);
  for (const w of workers) expect(w.stats.tasksDone).toBeGreaterThan(0);

  const metrics = (await coord.app.inject('/metrics')).body;
  expect(metrics).toContain(`crowdtrain_run_bytes_total{run="${run.id}",direction="up",layer="socket"} ${t.upBytes}`);
  expect(metrics).toMatch(new RegExp(`crowdtrain_run_bytes_total\\{run="${run.id}",direction="down",layer="http"\\} ${t.snapshotBytes}`));
}, 180_000);

test('a 25M-parameter model trains: its snapshot over HTTP, its results and parameters in 4 MiB chunks', async () => {
  const hidden = 31_600; // 784·31600 + 31600 + 31600·10 + 10 = 25,122,010 parameters
  coord = await startCoordinator({
    evaluation: 'inline',
    defaultRun: {
      dataset: 'mnist-10k',
      model: { kind: 'mlp', layers: [784, hidden, 10] },
      optimizer: { kind: 'sgd', lr: 0.01 },
      batchPerTask: 4,
      sync: { taskSizing: 'fixed' },
      evalEvery: 100_000,
      evalExamples: 10,
      checkpointEvery: 100_000,
      stop: { maxRounds: 3 },
    },
  });
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  expect(run.paramCount).toBe(25_122_010);
  const start = run.params.slice(0, 1000);
  workers = [startCpuWorker(coord.url)];
  await waitFor(() => run.state !== 'running', 150_000, '3 rounds of the 25M model');
  expect(run.state).toBe('completed');
  expect(run.version).toBe(3);
  expect(run.counters.rejected).toBe(0);
  await waitFor(() => workers[0].stats.tasksDone === 3, 10_000, 'the last acknowledgement');
  // The parameters moved (the results were folded whole).
  let moved = 0;
  for (let i = 0; i < start.length; i++) moved += Math.abs(run.params[i] - start[i]);
  expect(moved).toBeGreaterThan(0);
  // Each result (100 MB of float32) was far past one message: it came in chunks, and so did each commit's parameters.
  expect(4 * run.paramCount).toBeGreaterThan(20 * CHUNK_BYTES);
  expect(run.traffic.socketIn).toBe(3 * 4 * run.paramCount);
  expect(run.traffic.httpOut).toBe(4 * run.paramCount);
  // The channel sent round 3 to the worker (its view moves with each publish).
  const view = coord.app.crowdtrain.scheduler.channelById(run.id)!.view;
  expect(view.version).toBe(3);
}, 240_000);

/** Results that were refused or late still crossed the wire. */
function lateAndRejectedBytes(run: { counters: { late: number; rejected: number }; paramCount: number }): number {
  return (run.counters.late + run.counters.rejected) * codedBytes({ kind: 'int8', block: 256 }, run.paramCount);
}
