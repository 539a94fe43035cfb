// Model parallelism through the coordinator: the layers cut into pipeline stages held by
// different workers, activations and their gradients relayed between them, replicas averaged.
// Real coordinator, real Socket.IO workers (the CPU stage backend, in Node); the MLP form and a CNN.
import { afterEach, describe, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { initMlpParams } from '../shared/model.ts';
import type { RunSpecInput } from '../shared/run-spec.ts';
import { cpuStageBackend } from '../client/worker/stage-backend.ts';
import { expectClose } from './helpers/check-op.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const ROUNDS = 5;
const LAYERS = [784, 32, 24, 16, 10];
let open: { coord?: TestCoordinator; workers: WorkerClient[] } = { workers: [] };
async function closeAll() {
  for (const w of open.workers) w.stop();
  await open.coord?.close();
  open = { workers: [] };
}
afterEach(closeAll);

async function train(stages: number, replicas: number, microBatches: number, model: RunSpecInput['model'] = { layers: LAYERS, activation: 'gelu' }): Promise<Float32Array> {
  const spec: RunSpecInput = {
    model,
    optimizer: { kind: 'adam', lr: 1e-3 },
    globalBatch: 64,
    seed: 11,
    evalEvery: 1000,
    stop: { maxRounds: ROUNDS },
    parallelism: { stages, replicas, microBatches },
    sync: { minWorkers: stages * replicas, roundDeadlineMs: 30_000 },
  };
  const coord = await startCoordinator({ defaultRun: spec });
  open.coord = coord;
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  for (let i = 0; i < stages * replicas; i++) open.workers.push(startCpuWorker(coord.url));
  await waitFor(() => run.state === 'completed', 60_000, `${ROUNDS} rounds with P=${stages} D=${replicas}`);
  expect(run.version).toBe(ROUNDS);
  expect(run.counters.rejected).toBe(0);
  if (stages > 1) {
    // Activations and their gradients went through the coordinator: M micro-batches of 64/D rows
    // each way between each pair of neighbouring stages, per replica.
    const stats = coord.app.crowdtrain.scheduler.pipeline.lastStats.get(run.id)!;
    expect(stats).toMatchObject({ stages, replicas, microBatches });
    expect(stats.relayedBytes).toBeGreaterThan(0);
    expect(run.counters.folded).toBe(ROUNDS * stages * replicas);
  }
  const params = run.params.slice();
  await closeAll();
  return params;
}

describe('equivalence with P=1 on the same batches', () => {
  test('P=2, P=3 and D=2 x P=2 give the parameters of P=1 after 5 rounds', async () => {
    const single = await train(1, 1, 1);
    const init = initMlpParams({ layers: LAYERS, activation: 'gelu' }, 11);
    expect(single.some((v, i) => Math.abs(v - init[i]) > 1e-4)).toBe(true); // it trained
    for (const [stages, replicas, microBatches] of [
      [2, 1, 2],
      [3, 1, 4],
      [2, 2, 2],
    ]) {
      const p = await train(stages, replicas, microBatches);
      expectClose(p, single, { atol: 2e-6, rtol: 1e-4 }, `parameters with P=${stages} D=${replicas} M=${microBatches}`);
    }
  });
});

describe('a layer list over real sockets', () => {
  test('a CNN cut into 2 stages (image activations relayed) gives the parameters of P=1', async () => {
    const cnn = { layers: [{ kind: 'conv2d', out: 4, kernel: 5 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }] };
    const single = await train(1, 1, 1, cnn);
    const p = await train(2, 1, 2, cnn);
    expectClose(p, single, { atol: 2e-6, rtol: 1e-4 }, 'CNN parameters with P=2 M=2');
  });
});

describe('failure', () => {
  test('a stage worker leaving mid-run: a standby takes its stage, the round is retried, never committed in part', async () => {
    const coord = await startCoordinator({
      defaultRun: {
        model: { layers: [784, 64, 32, 10], activation: 'relu' },
        evalEvery: 5,
        parallelism: { stages: 2, replicas: 1, microBatches: 4 },
        sync: { minWorkers: 2, roundDeadlineMs: 10_000 },
        stop: { maxRounds: 60 },
      },
    });
    open.coord = coord;
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    // Stage backends that take 50 ms over their gradient, so that a round is surely open when a
    // worker is stopped in the middle of one.
    const busy = new Map<WorkerClient, boolean>();
    const slowWorker = () => {
      const w: WorkerClient = startCpuWorker(coord.url, {
        makeStageBackend: async (_run, setup) => {
          const stage = cpuStageBackend(setup);
          const gradients = stage.gradients.bind(stage);
          stage.gradients = async () => {
            busy.set(w, true);
            await new Promise((r) => setTimeout(r, 50));
            busy.set(w, false);
            return gradients();
          };
          return stage;
        },
      });
      return w;
    };
    const workers = [slowWorker(), slowWorker(), slowWorker()];
    open.workers.push(...workers);
    await waitFor(() => run.version >= 15, 60_000, '15 pipeline rounds');
    // Stop a worker while it computes its stage of an open round.
    await waitFor(() => workers.some((w) => busy.get(w)), 10_000, 'a worker in the middle of a round');
    const holder = workers.find((w) => busy.get(w))!;
    const versionAtStop = run.version;
    holder.stop();
    await waitFor(() => run.state === 'completed', 60_000, 'the run to complete with the standby');
    expect(run.version).toBe(60);
    // Every committed round folded both stages; results of the abandoned round were not counted.
    expect(run.counters.folded).toBe(60 * 2);
    const standby = workers.find((w) => w !== holder && w.stats.tasksDone > 0 && w.stats.placement !== null);
    expect(standby).toBeDefined();
    const events = coord.app.crowdtrain.store.events(run.id, 1000).map((e) => e.message);
    expect(events.some((m) => new RegExp(`round ${versionAtStop + 1} abandoned, to be retried: worker .* left`).test(m))).toBe(true);
    // Evaluations run beside the rounds: on a busy machine the last ones land after the run completes.
    await waitFor(() => run.evaluatedVersion === run.version, 60_000, 'the evaluation of the last version');
    expect(run.accuracy).toBeGreaterThan(0.5);
  });
});
