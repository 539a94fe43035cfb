// Several runs on one grid (server/grid-shares.ts through the real Scheduler): in the
// virtual-time simulator, running runs share the workers by weight in worker-seconds (workers
// serving a run × time, sampled every 100 virtual ms), a run below its minWorkers is served
// first, a changed share moves workers at round boundaries only, and no worker ever computes a
// task on parameters other than its run's. The gradients are a cheap stand-in (zeros) checked
// against the parameters they were given: the scheduling is what is under test here. Then the
// admin's PATCH of a share over REST, and real Socket.IO workers moved between two runs (each
// run's own parameters, the page told which run it serves, no shard fetched twice).
import { describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { GridSim } from '../bench/sim/grid-sim.ts';
import type { GradientEngine } from '../bench/sim/gradients.ts';
import { equalWorkers } from '../bench/sim/profiles.ts';
import { DatasetRegistry } from '../server/data/registry.ts';
import { GridShares, idealWorkers } from '../server/grid-shares.ts';
import type { Run } from '../server/run.ts';
import type { RunInfo } from '../shared/protocol.ts';
import { parseRunSpec, RunSpecError, type RunSpecInput } from '../shared/run-spec.ts';
import { sharedDataDir, startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';

const SPEED = 1000; // examples/s each, virtual time

const base = (over: RunSpecInput): RunSpecInput => ({
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 16, 10], activation: 'relu' },
  batchPerTask: 32,
  evalEvery: 100_000,
  checkpointEvery: 1_000_000,
  sync: { minWorkers: 1, roundDeadlineMs: 5_000 },
  ...over,
});

/**
 * Stand-in gradients for one run: zeros (so the run's parameters stay its initial ones), after
 * checking that the parameters given are that run's. `wrong` counts tasks computed on others.
 */
function checkingEngine(run: () => Run, counter: { wrong: number }): GradientEngine {
  return {
    async compute(params, indices) {
      const own = run().params;
      if (params.length !== own.length || params.some((v, i) => v !== own[i])) counter.wrong++;
      return { loss: 2.3, grads: new Float32Array(params.length) };
    },
    async innerSteps() {
      throw new Error('sync runs only');
    },
    forget() {},
  };
}

interface Grid {
  sim: GridSim;
  a: Run;
  b: Run;
  wrong: { wrong: number };
  /** Worker-ms each run received (workers serving it × time), sampled every 100 ms from `from`. */
  received: Map<string, number>;
  /** Moves seen at the port, with whether the run left had a task out at that moment. */
  moves: { at: number; worker: string; from: string; to: string; tasksOut: number }[];
}

function grid(a: RunSpecInput, b: RunSpecInput, workers: number, opts: { sampleFrom?: number } = {}): Grid {
  const dataset = new DatasetRegistry(sharedDataDir).get('mnist-10k')!;
  const wrong = { wrong: 0 };
  let runA: Run | undefined;
  let runB: Run | undefined;
  const sim = new GridSim({ spec: parseRunSpec(base(a)), dataset, engine: checkingEngine(() => runA!, wrong), evaluate: () => ({ loss: 2.3, accuracy: 0.1 }) });
  runA = sim.run;
  runB = sim.addRun(parseRunSpec(base(b)), checkingEngine(() => runB!, wrong));
  const received = new Map<string, number>([
    [runA.id, 0],
    [runB.id, 0],
  ]);
  const moves: Grid['moves'] = [];
  const assign = sim.port.assign.bind(sim.port);
  const serving = new Map<string, string>();
  sim.port.assign = (workerId: string, run: RunInfo | null) => {
    const previous = serving.get(workerId);
    if (run && previous && run.id !== previous) {
      moves.push({ at: sim.clock.now(), worker: workerId, from: previous, to: run.id, tasksOut: sim.scheduler.sync.openTasks(previous).length });
    }
    if (run) serving.set(workerId, run.id);
    assign(workerId, run);
  };
  sim.every(100, () => {
    if (sim.clock.now() <= (opts.sampleFrom ?? 0)) return;
    for (const id of received.keys()) received.set(id, received.get(id)! + 100 * sim.scheduler.workersOf(id).length);
  });
  for (const p of equalWorkers(workers, SPEED)) sim.addWorker(p);
  return { sim, a: runA, b: runB, wrong, received, moves };
}

function workerStats(sim: GridSim): { stale: number; refused: number; examples: Map<string, number> } {
  let stale = 0;
  let refused = 0;
  const examples = new Map<string, number>();
  for (const w of sim.workers.values()) {
    stale += w.stats.stale;
    refused += w.stats.refused;
    for (const [run, n] of w.stats.examplesByRun) examples.set(run, (examples.get(run) ?? 0) + n);
  }
  return { stale, refused, examples };
}

const counts = (g: Grid) => [g.sim.scheduler.workersOf(g.a.id).length, g.sim.scheduler.workersOf(g.b.id).length];

describe('the share policy', () => {
  test('minimums first (by share), then the rest by weight; a minimum that does not fit gets no workers', () => {
    const ideal = (runs: [string, number, number][], total: number) => Object.fromEntries(idealWorkers(runs.map(([id, share, minWorkers]) => ({ id, share, minWorkers, workers: 0 })), total));
    expect(ideal([['a', 2, 1], ['b', 1, 1]], 6)).toEqual({ a: 4, b: 2 });
    expect(ideal([['a', 2, 1], ['b', 1, 3]], 6)).toEqual({ a: 3, b: 3 });
    expect(ideal([['a', 2, 1], ['b', 1, 3]], 3)).toEqual({ a: 3 });
    expect(ideal([['a', 2, 1], ['b', 1, 3]], 0)).toEqual({});
  });

  test('the odd worker goes to the run owed most, and stays there a while', () => {
    const shares = new GridShares();
    const runs = (a: number) => [
      { id: 'a', share: 2, minWorkers: 1, workers: a },
      { id: 'b', share: 1, minWorkers: 1, workers: 5 - a },
    ];
    shares.accrue(0, runs(3), 5);
    // 5 workers at 2:1 is 3.33:1.67: b's larger fraction takes the fifth worker first.
    expect(Object.fromEntries(shares.targets(runs(3), 5))).toEqual({ a: 3, b: 2 });
    shares.accrue(1_000, runs(3), 5);
    expect(shares.choose('b', runs(3), 5)).toBeNull();
    // b held 2 for long enough: a is owed, so a worker of b moves to a.
    shares.accrue(30_000, runs(3), 5);
    expect(Object.fromEntries(shares.targets(runs(3), 5))).toEqual({ a: 4, b: 1 });
    expect(shares.choose('b', runs(3), 5)).toBe('a');
    expect(shares.account('a').debtMs).toBeGreaterThan(0);
  });

  test('a share that is not a positive number is refused, naming the field', () => {
    for (const share of [0, -1, 'two', Infinity]) {
      expect(() => parseRunSpec({ share })).toThrow(RunSpecError);
      expect(() => parseRunSpec({ share })).toThrow(/^share: /);
    }
    expect(parseRunSpec({}).share).toBe(1);
  });
});

describe('several runs on one grid (virtual time)', () => {
  test('weights 2:1 over a simulated minute: worker-seconds within ±10 % of the weights, no stale task, no refusal', async () => {
    const g = grid({ name: 'a', share: 2, seed: 1 }, { name: 'b', share: 1, seed: 2, model: { kind: 'mlp', layers: [784, 12, 10], activation: 'relu' } }, 5);
    await g.sim.runUntil({ maxSimMs: 60_000 });
    g.sim.close();
    const ra = g.received.get(g.a.id)!;
    const rb = g.received.get(g.b.id)!;
    const fa = ra / (ra + rb);
    const fb = rb / (ra + rb);
    const { stale, refused, examples } = workerStats(g.sim);
    console.log(`2:1 on 5 workers, 60 s: a ${(ra / 1000).toFixed(1)} worker-s (${(fa * 100).toFixed(1)} %), b ${(rb / 1000).toFixed(1)} worker-s (${(fb * 100).toFixed(1)} %); examples a ${examples.get(g.a.id)}, b ${examples.get(g.b.id)}; rounds a ${g.a.version}, b ${g.b.version}; ${g.moves.length} moves; stale ${stale}, refused ${refused}, wrong params ${g.wrong.wrong}`);
    // Every worker was counted all the time but its join (5 × 60 s).
    expect(ra + rb).toBeGreaterThan(0.99 * 5 * 60_000);
    expect(fa).toBeGreaterThanOrEqual((2 / 3) * 0.9);
    expect(fa).toBeLessThanOrEqual((2 / 3) * 1.1);
    expect(fb).toBeGreaterThanOrEqual((1 / 3) * 0.9);
    expect(fb).toBeLessThanOrEqual((1 / 3) * 1.1);
    // Both runs trained, the odd worker changed runs (the split is not a fixed 3:2 or 4:1), each move at a round boundary.
    expect(g.a.version).toBeGreaterThan(20);
    expect(g.b.version).toBeGreaterThan(20);
    expect(g.moves.length).toBeGreaterThanOrEqual(2);
    expect(g.moves.length).toBeLessThanOrEqual(20);
    expect(g.moves.every((m) => m.tasksOut === 0)).toBe(true);
    expect(g.wrong.wrong).toBe(0);
    expect(stale).toBe(0);
    expect(refused).toBe(0);
    expect(g.a.counters.rejected + g.b.counters.rejected).toBe(0);
  });

  test('a run below its minWorkers is served first: it gets its minimum before the other run its weight', async () => {
    const g = grid({ name: 'a', share: 2 }, { name: 'b', share: 1, sync: { minWorkers: 3, roundDeadlineMs: 5_000 } }, 3);
    await g.sim.runUntil({ maxSimMs: 5_000 });
    // Three workers cannot open a round of b and one of a: all three serve a.
    expect(counts(g)).toEqual([3, 0]);
    expect(g.b.version).toBe(0);
    g.sim.addWorker(equalWorkers(1, SPEED)[0]);
    await g.sim.runUntil({ maxSimMs: 10_000 });
    // A fourth: b takes its three (its weight alone would give it one), a keeps one.
    expect(counts(g)).toEqual([1, 3]);
    expect(g.b.version).toBeGreaterThan(0);
    for (const p of equalWorkers(2, SPEED)) g.sim.addWorker(p);
    await g.sim.runUntil({ maxSimMs: 15_000 });
    // Six: b's minimum still binds (weight alone: 4:2), a has the rest.
    expect(counts(g)).toEqual([3, 3]);
    const aAt = g.a.version;
    const bAt = g.b.version;
    await g.sim.runUntil({ maxSimMs: 20_000 });
    g.sim.close();
    expect(g.a.version).toBeGreaterThan(aAt);
    expect(g.b.version).toBeGreaterThan(bAt);
    expect(g.moves.every((m) => m.tasksOut === 0)).toBe(true);
    expect(g.wrong.wrong + workerStats(g.sim).stale + workerStats(g.sim).refused).toBe(0);
  });

  test('a share changed at run time moves workers at the next round boundaries, and only then', async () => {
    const g = grid({ name: 'a', share: 1 }, { name: 'b', share: 1 }, 6);
    await g.sim.runUntil({ maxSimMs: 10_000 });
    expect(counts(g)).toEqual([3, 3]);
    const before = g.moves.length;
    const roundsB = g.b.version;
    const changedAt = g.sim.clock.now();
    g.sim.scheduler.setShare(g.a, 2);
    expect(() => g.sim.scheduler.setShare(g.a, 0)).toThrow(/share must be a positive number/);
    await g.sim.runUntil({ maxSimMs: 10_000 + 3_000 });
    expect(counts(g)).toEqual([4, 2]);
    const moved = g.moves.slice(before);
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatchObject({ from: g.b.id, to: g.a.id, tasksOut: 0 });
    console.log(`share 1 -> 2 at ${changedAt} ms: the worker moved at ${moved[0].at} ms (${moved[0].at - changedAt} ms later), run b at round ${g.b.version} (${roundsB} at the change)`);
    // It stays: 4:2 is exact, so nothing moves again.
    await g.sim.runUntil({ maxSimMs: 30_000 });
    g.sim.close();
    expect(g.moves.length).toBe(before + 1);
    expect(counts(g)).toEqual([4, 2]);
    expect(g.wrong.wrong + workerStats(g.sim).stale + workerStats(g.sim).refused).toBe(0);
  });
});

describe('runs ending', () => {
  test('when a run completes, its workers go to the runs still running at once', async () => {
    const g = grid({ name: 'a', share: 1 }, { name: 'b', share: 1, stop: { maxRounds: 10 } }, 4);
    await g.sim.runUntil({ maxSimMs: 60_000, until: () => g.b.state === 'completed' });
    expect(g.b.state).toBe('completed');
    expect(counts(g)).toEqual([4, 0]);
    const at = g.a.version;
    await g.sim.runUntil({ maxSimMs: g.sim.clock.now() + 2_000 });
    g.sim.close();
    expect(g.a.version).toBeGreaterThan(at);
    expect(g.wrong.wrong + workerStats(g.sim).stale + workerStats(g.sim).refused).toBe(0);
  });
});

describe('a run\'s share over REST', () => {
  test('PATCH /api/runs/:id sets the share for an admin; anything but a positive number is refused, naming the field', async () => {
    const token = 'shares-test-token-0123456789';
    const app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), adminToken: token, defaultRun: base({ name: 'shared' }) });
    try {
      const run = [...app.crowdtrain.scheduler.runs.values()][0];
      const patch = (payload: unknown, auth = true, id = run.id) =>
        app.inject({ method: 'PATCH', url: `/api/runs/${id}`, payload: payload as object, headers: auth ? { authorization: `Bearer ${token}` } : {} });
      expect((await patch({ share: 3 }, false)).statusCode).toBe(401);
      const ok = await patch({ share: 3 });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().run.spec.share).toBe(3);
      expect(run.spec.share).toBe(3);
      expect(app.crowdtrain.store.getRun(run.id)?.spec.share).toBe(3);
      for (const share of [0, -2, 'big', null]) {
        const bad = await patch({ share });
        expect(bad.statusCode).toBe(400);
        expect(bad.json().message).toMatch(/^share must be a positive number/);
      }
      expect((await patch({ name: 'other' })).json().message).toMatch(/share/);
      expect((await patch({ share: 2, name: 'other' })).json().message).toMatch(/only share can change/);
      expect((await patch({ share: 2 }, true, 'nope')).statusCode).toBe(404);
      expect(run.spec.share).toBe(3);
    } finally {
      await app.close();
    }
  });
});

describe('real workers moved between runs (Socket.IO, CPU backend)', () => {
  test('a worker moved off a paused run and back trains each run on its own parameters, tells its page which run it serves, and fetches no shard twice', async () => {
    const folds: string[] = [];
    let coord: TestCoordinator | undefined;
    const workers: WorkerClient[] = [];
    try {
      coord = await startCoordinator({
        defaultRun: base({ name: 'first', sync: { minWorkers: 1, roundDeadlineMs: 5_000 } }),
        onFold: (run, roundVersion, r) => {
          if (r.runId !== run.id || r.version !== roundVersion) folds.push(`${r.taskId}: result of ${r.runId} v${r.version} folded into ${run.id} v${roundVersion}`);
        },
      });
      const ctx = coord.app.crowdtrain;
      const a = [...ctx.scheduler.runs.values()][0];
      const b = ctx.createRun(base({ name: 'second', seed: 5, model: { kind: 'mlp', layers: [784, 12, 10], activation: 'relu' } }));
      // Each worker's shard fetches, by SHA-256: a shard stored twice was fetched twice.
      const puts = [new Map<string, number>(), new Map<string, number>()];
      // Why results were not used, as the workers' pages would show it.
      const notUsed: string[] = [];
      for (const stored of puts) {
        workers.push(
          startCpuWorker(coord.url, {
            shardCache: { get: async () => undefined, put: async (sha) => void stored.set(sha, (stored.get(sha) ?? 0) + 1) },
            onChange: (s) => {
              if (s.message?.startsWith('last result not used') && notUsed.at(-1) !== s.message) notUsed.push(s.message);
            },
          }),
        );
      }
      const of = (runId: string) => ctx.scheduler.workersOf(runId).map((w) => w.id);
      await waitFor(() => of(a.id).length === 1 && of(b.id).length === 1 && a.version >= 5 && b.version >= 5, 60_000, 'one worker on each run, 5 rounds each');
      const movedId = of(b.id)[0];
      const moved = workers.find((w) => w.stats.workerId === movedId)!;
      expect(moved.stats.run?.runId).toBe(b.id);
      ctx.setRunState(b, 'paused');
      await waitFor(() => of(a.id).length === 2 && moved.stats.run?.runId === a.id && moved.stats.tasksDone > 0, 30_000, 'the worker of the paused run to serve the other');
      expect(moved.stats.serving).toEqual({ runId: a.id, name: 'first', stages: 1 });
      const doneOnA = moved.stats.tasksDone;
      await waitFor(() => moved.stats.tasksDone >= doneOnA + 3, 30_000, 'three tasks of the other run');
      const bAt = b.version;
      ctx.setRunState(b, 'running');
      await waitFor(() => of(b.id).length === 1 && b.version >= bAt + 5, 60_000, 'a worker back on the resumed run, 5 more rounds');
      expect(of(a.id)).toHaveLength(1);
      expect(folds).toEqual([]);
      for (const stored of puts) expect([...stored.values()].every((n) => n === 1)).toBe(true);
      // None was wrong; one computing for the run when it was paused may have arrived late.
      expect(a.counters.rejected + b.counters.rejected).toBe(0);
      expect(workers.reduce((n, w) => n + w.stats.tasksRejected, 0)).toBeLessThanOrEqual(1);
      for (const m of notUsed) expect(m).toMatch(/: late: /);
    } finally {
      for (const w of workers) w.stop();
      await coord?.close();
    }
  }, 120_000);
});
