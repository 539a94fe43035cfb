// A contributor's pause and work cap, as the coordinator sees them: a paused worker computes
// nothing while the run goes on with the others, resumes where it left, and a capped worker
// keeps contributing, only slower. Round and fold invariants belong in data-parallel.test.ts.
import { afterEach, expect, test } from 'vitest';
import type { AppOptions } from '../server/app.ts';
import type { WorkerClient, WorkerClock } from '../client/worker/worker-client.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

let open: { coord?: TestCoordinator; workers: WorkerClient[] } = { workers: [] };
afterEach(async () => {
  for (const w of open.workers) w.stop();
  await open.coord?.close();
  open = { workers: [] };
});

/**
 * A worker clock on which the work cap's rests take no real time: it runs with the real one and
 * jumps forward by each rest. The duty cycle read from it is the cap's arithmetic, exactly,
 * however fast, slow or loaded the machine (no timer firing early or late).
 */
function skippingClock(): WorkerClock {
  let rested = 0;
  return {
    now: () => performance.now() + rested,
    sleep: async (ms) => {
      rested += ms;
    },
  };
}

/** Times on `clock` at which a worker's accepted-task count went up (one entry per task). */
function taskClock(clock: WorkerClock): { times: number[]; onChange: (s: { tasksDone: number }) => void } {
  const times: number[] = [];
  let seen = 0;
  return {
    times,
    onChange: (s) => {
      for (; seen < s.tasksDone; seen++) times.push(clock.now());
    },
  };
}

async function startRun(opts: Partial<AppOptions> = {}, batchPerTask = 64) {
  const coord = await startCoordinator({ defaultRun: { batchPerTask, evalEvery: 1000, sync: { minWorkers: 1, roundDeadlineMs: 15_000 } }, ...opts });
  open.coord = coord;
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  return { coord, run };
}

test('a paused worker computes nothing while the run goes on without it, and contributes again on resume', async () => {
  const { coord, run } = await startRun();
  const a = startCpuWorker(coord.url);
  const b = startCpuWorker(coord.url);
  open.workers.push(a, b);
  await waitFor(() => a.stats.tasksDone >= 2 && b.stats.tasksDone >= 2, 30_000, 'both workers to complete tasks');

  a.pause();
  expect(a.stats.state).toBe('paused');
  // A task handed to A just before its pause reached the coordinator is still computed and
  // folded; two more rounds make sure none is left.
  const pausedAt = run.version;
  await waitFor(() => run.version >= pausedAt + 2, 15_000, 'two rounds after the pause');
  const aDone = a.stats.tasksDone;
  const bDone = b.stats.tasksDone;
  const version = run.version;
  // Three more rounds, each one A would have had a task in had it asked for one.
  await waitFor(() => run.version >= version + 3 && b.stats.tasksDone >= bDone + 3, 30_000, 'three rounds without the paused worker');
  expect(a.stats.state).toBe('paused');
  expect(a.stats.tasksDone, 'a paused worker must not complete tasks').toBe(aDone);
  expect(run.version, 'the run goes on with the other worker').toBeGreaterThanOrEqual(version + 3);
  expect(b.stats.tasksDone).toBeGreaterThanOrEqual(bDone + 3);
  const entry = coord.app.crowdtrain.scheduler.workers.get(a.stats.workerId!);
  expect(entry?.paused).toBe(true);

  a.resume();
  expect(a.stats.state).toBe('training');
  await waitFor(() => a.stats.tasksDone >= aDone + 3, 15_000, 'the resumed worker to complete tasks again');
  expect(entry?.paused).toBe(false);

  // A cap only slows a worker: B still takes and completes tasks beside the uncapped A.
  b.setCap(0.25);
  const bCapped = b.stats.tasksDone;
  await waitFor(() => b.stats.tasksDone >= bCapped + 3, 15_000, 'the capped worker to complete tasks');
  expect(b.stats.tasksRejected).toBe(0);
});

test('a worker capped at 25 % keeps completing tasks and computes at most a quarter of the time', async () => {
  // With one worker, the k-th folded result is its k-th task: its compute time as it reported it.
  const computeMs: number[] = [];
  // Large tasks, so that uncapped the worker computes most of the time (messages are short).
  const { coord, run } = await startRun({ onFold: (_run, _v, r) => computeMs.push(r.computeMs ?? Number.NaN) }, 256);
  // The worker's own clock, its rests skipped: computing and resting measured on one clock.
  const workerClock = skippingClock();
  const clock = taskClock(workerClock);
  const b = startCpuWorker(coord.url, { onChange: clock.onChange, clock: workerClock });
  open.workers.push(b);
  /** Fraction of the worker's time between the ends of tasks `from` and `to` spent computing. */
  const duty = (from: number, to: number) => computeMs.slice(from + 1, to + 1).reduce((x, y) => x + y, 0) / (clock.times[to] - clock.times[from]);

  // The first tasks include warm-up; measure the ones after it.
  await waitFor(() => b.stats.tasksDone >= 5, 30_000, 'a few uncapped tasks');
  let from = clock.times.length - 1;
  await waitFor(() => clock.times.length >= from + 21, 30_000, '20 uncapped tasks');
  const uncapped = duty(from, from + 20);

  b.setCap(0.25);
  // The task in flight when the cap changed may rest or not; start after it.
  await waitFor(() => clock.times.length >= from + 23, 30_000, 'the task in flight at the cap change');
  from = clock.times.length - 1;
  const version = run.version;
  await waitFor(() => clock.times.length >= from + 21, 60_000, '20 capped tasks');
  const capped = duty(from, from + 20);

  expect(b.stats.state).toBe('training');
  expect(b.stats.tasksRejected).toBe(0);
  expect(computeMs.length).toBeGreaterThanOrEqual(clock.times.length);
  // Folded before they are acknowledged: the round of the task in flight may already count.
  expect(run.version, 'its results are folded').toBeGreaterThanOrEqual(version + 19);
  const seen = `computing ${(100 * uncapped).toFixed(0)} % of the time uncapped, ${(100 * capped).toFixed(0)} % capped`;
  // Else the cap would have nothing to hold back and the bound below would prove nothing.
  expect(uncapped, seen).toBeGreaterThan(0.35);
  // Each capped task rests 3x its compute time after it: at most 25 %, whatever the machine's
  // speed or load (the margin was for timers firing early; on the worker's clock a rest is exact).
  expect(capped, seen).toBeLessThanOrEqual(0.27);
});
