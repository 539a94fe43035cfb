// Local (DiLoCo) rounds, compressed updates and parameter deltas through the real scheduler on the
// in-memory port, with workers that compute real gradients and inner steps on the CPU backend.
import { describe, expect, test } from 'vitest';
import { DatasetRegistry } from '../server/data/registry.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { codedBytes, encodeUpdate, ErrorFeedback, topkCount } from '../shared/update-codec.ts';
import { createRng } from '../shared/rng.ts';
import { ExampleCursor, taskExamples } from '../shared/epoch-order.ts';
import { MemoryGrid } from './helpers/memory-grid.ts';
import type { SyncRounds } from '../server/rounds/sync-rounds.ts';
import { LOCAL_PROBE_STEPS, planLocalRound } from '../server/task-sizing.ts';
import { sharedDataDir } from './helpers/coordinator.ts';

const dataset = () => new DatasetRegistry(sharedDataDir).get('mnist-10k')!;

const base: RunSpecInput = {
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 32, 10] },
  batchPerTask: 16,
  seed: 3,
  evalEvery: 100_000,
  sync: { taskSizing: 'fixed', minWorkers: 2 },
};

function grid(spec: RunSpecInput, workers: number): MemoryGrid {
  const g = new MemoryGrid(parseRunSpec(spec), dataset(), { evalExamples: 2000 });
  for (let i = 0; i < workers; i++) g.addWorker(`w${i}`);
  return g;
}

describe('local mode', () => {
  test('H=1, no compression, inner SGD and an outer SGD step of 1 without momentum equal sync rounds on the same examples', async () => {
    const lr = 0.05;
    const sync = grid({ ...base, optimizer: { kind: 'sgd', lr }, stop: { maxRounds: 12 } }, 2);
    await sync.runUntil(() => false);
    const local = grid({ ...base, optimizer: { kind: 'sgd', lr }, sync: { ...base.sync, mode: 'local', innerSteps: 1, outer: { lr: 1, momentum: 0 } }, stop: { maxRounds: 12 } }, 2);
    await local.runUntil(() => false);
    expect(sync.run.version).toBe(12);
    expect(local.run.version).toBe(12);
    expect(local.run.samples).toBe(sync.run.samples);
    let worst = 0;
    for (let i = 0; i < sync.run.params.length; i++) worst = Math.max(worst, Math.abs(sync.run.params[i] - local.run.params[i]));
    expect(worst).toBeLessThan(1e-6);
    // Different from the start: the rounds did train.
    const start = grid({ ...base, stop: { maxRounds: 1 } }, 0).run.params;
    let moved = 0;
    for (let i = 0; i < start.length; i++) moved = Math.max(moved, Math.abs(start[i] - local.run.params[i]));
    expect(moved).toBeGreaterThan(1e-3);
    sync.close();
    local.close();
  });

  test('H=8 AdamW inner steps with the default outer Nesterov step train, and each task is whole inner steps', async () => {
    const g = grid({ ...base, optimizer: { lr: 3e-3 }, sync: { ...base.sync, mode: 'local', innerSteps: 8 }, stop: { maxRounds: 15 } }, 0);
    expect(g.run.spec.optimizer.kind).toBe('adamw');
    expect(g.run.coordinatorOptimizer()).toMatchObject({ kind: 'momentum', lr: 0.7, momentum: 0.9, nesterov: true });
    const steps: number[] = [];
    const tasks = g.port.task.bind(g.port);
    g.port.task = (id, meta, data) => {
      if (meta.local) steps.push(meta.local.steps * 1000 + meta.local.batch);
      tasks(id, meta, data);
    };
    for (let i = 0; i < 3; i++) g.addWorker(`w${i}`);
    await g.runUntil(() => false);
    expect(g.run.version).toBe(15);
    // Every task was H = 8 steps of batchPerTask (fixed sizing), and every one was folded.
    expect(new Set(steps)).toEqual(new Set([8016]));
    expect(g.run.samples).toBe(steps.length * 8 * 16);
    expect(steps.length).toBeGreaterThanOrEqual(15 * 3 - 1); // the first round may open before the third worker joins
    expect(g.run.loss!).toBeLessThan(1.0);
    g.close();
  });

  test('a worker that leaves mid-round loses only its inner steps; a joiner starts from the current outer parameters', async () => {
    const g = grid({ ...base, optimizer: { lr: 3e-3 }, sync: { ...base.sync, mode: 'local', innerSteps: 4, minWorkers: 1 }, stop: { maxRounds: 10 } }, 3);
    await g.runUntil(() => g.run.version >= 3);
    // w2 leaves while it holds a task of round 4.
    await g.runUntil(() => (g.scheduler.modeOf(g.run) as SyncRounds).openTasks(g.run.id).some((t) => t.workerId === 'w2'));
    const before = g.run.version;
    g.removeWorker('w2');
    await g.runUntil(() => g.run.version > before);
    expect(g.run.version).toBe(before + 1);
    const joiner = g.addWorker('w9');
    expect(joiner.copy.replica?.version).toBe(g.run.version);
    expect(Array.from(joiner.copy.replica!.params)).toEqual(Array.from(g.run.params));
    await g.runUntil(() => false);
    expect(g.run.version).toBe(10);
    expect(g.scheduler.workers.get('w9')!.tasksDone).toBeGreaterThan(0);
    g.close();
  });
});

describe('local round plan', () => {
  test('the median worker takes H steps, the others in proportion (1 to 2H), a new one a probe, one too slow for a step sits out', () => {
    const spec = parseRunSpec({ ...base, sync: { mode: 'local', innerSteps: 8 } });
    const plan = planLocalRound(spec, [
      { id: 'slow', speed: 100 },
      { id: 'median', speed: 200 },
      { id: 'fast', speed: 400 },
      { id: 'faster', speed: 4000 },
      { id: 'new', speed: 0 },
      { id: 'crawl', speed: 1 },
    ]);
    // Sorted measured speeds 1, 100, 200, 400, 4000: the median is 200.
    expect(plan.plannedMs).toBe((8 * 16 * 1000) / 200);
    expect(plan.sizes.map((n) => n / 16)).toEqual([4, 8, 16, 16, LOCAL_PROBE_STEPS, 0]);
    const fixed = planLocalRound(parseRunSpec({ ...base, sync: { mode: 'local', innerSteps: 8, taskSizing: 'fixed' } }), [{ id: 'a', speed: 0 }, { id: 'b', speed: 50 }]);
    expect(fixed.sizes).toEqual([128, 128]);
  });
});

describe('compression', () => {
  test('int8 with error feedback: the residual stays bounded over 1,000 steps and nothing is lost for good', () => {
    const n = 4096;
    const rng = createRng(11);
    const ef = new ErrorFeedback(n);
    const coding = { kind: 'int8' as const, block: 256 };
    const sent = new Float64Array(n);
    const truth = new Float64Array(n);
    let worst = 0;
    for (let step = 0; step < 1000; step++) {
      const g = new Float32Array(n);
      for (let i = 0; i < n; i++) g[i] = (rng.float() - 0.5) * (i % 7 === 0 ? 1 : 0.01);
      for (let i = 0; i < n; i++) truth[i] += g[i];
      const bytes = encodeUpdate(coding, g, ef);
      const decoded = new Float32Array(n);
      // The coordinator's fold, weight 1.
      foldOnce(bytes, decoded);
      for (let i = 0; i < n; i++) sent[i] += decoded[i];
      let r = 0;
      for (let i = 0; i < n; i++) r = Math.max(r, Math.abs(ef.residual[i]));
      worst = Math.max(worst, r);
    }
    // One step's quantisation error at most (half a scale of a block whose values reach 0.5 + residual).
    expect(worst).toBeLessThan(0.01);
    // Σ sent + residual = Σ updates (float rounding only).
    let drift = 0;
    for (let i = 0; i < n; i++) drift = Math.max(drift, Math.abs(sent[i] + ef.residual[i] - truth[i]));
    expect(drift).toBeLessThan(1e-3);

    function foldOnce(bytes: Uint8Array, into: Float32Array): void {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const blocks = Math.ceil(n / coding.block);
      const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * blocks, n);
      for (let i = 0; i < n; i++) into[i] = view.getFloat32(4 * Math.floor(i / coding.block), true) * q[i];
    }
  });

  test('a short run with int8 both ways ends within 0.5 points of none on the same seed', async () => {
    const spec = { ...base, optimizer: { kind: 'adam' as const, lr: 2e-3 }, stop: { maxRounds: 80 }, evalEvery: 80 };
    const plain = grid(spec, 2);
    await plain.runUntil(() => false);
    const int8 = grid({ ...spec, compression: 'int8' }, 2);
    await int8.runUntil(() => false);
    expect(plain.run.accuracy).not.toBeNull();
    expect(plain.run.accuracy!).toBeGreaterThan(0.8);
    expect(Math.abs(int8.run.accuracy! - plain.run.accuracy!)).toBeLessThanOrEqual(0.005);
    // What int8 sent: a quarter of float32 and the block scales, both ways.
    const up = plain.port.traffic.runs!.get(plain.run.id)!.socketIn;
    const upInt8 = int8.port.traffic.runs!.get(int8.run.id)!.socketIn;
    expect(upInt8 / up).toBeCloseTo(codedBytes({ kind: 'int8', block: 256 }, plain.run.paramCount) / (4 * plain.run.paramCount), 3);
    const down = plain.port.traffic.runs!.get(plain.run.id)!.socketOut;
    const downInt8 = int8.port.traffic.runs!.get(int8.run.id)!.socketOut;
    expect(downInt8 / down).toBeLessThan(0.3);
    plain.close();
    int8.close();
  });

  test('malformed coded results are refused with their reason, and the run trains on', async () => {
    const g = grid({ ...base, compression: { up: 'topk', down: 'int8', fraction: 0.05, block: 64 }, stop: { maxRounds: 6 } }, 2);
    const bad = g.workers.get('w1')!;
    const n = g.run.paramCount;
    const k = topkCount(n, 0.05);
    const cases: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
      ['wrong length', (b) => b.subarray(0, b.byteLength - 3), /is \d+ bytes, got \d+/],
      ['bad scale', (b) => withFloat(b, 4 + 4 * k, Number.NaN), /scale 0 of the topk result is NaN/],
      ['index out of range', (b) => withUint(b, 4 + 4 * (k - 1), n + 5), /outside \[0, \d+\)/],
      ['duplicate index', (b) => withUint(b, 8, new DataView(b.buffer, b.byteOffset).getUint32(4, true)), /repeats/],
    ];
    const reasons: string[] = [];
    for (const [, mutate, reason] of cases) {
      bad.tamper = (bytes, meta) => ({ bytes: mutate(bytes), meta });
      const before = bad.refused.length;
      await g.runUntil(() => bad.refused.length > before);
      expect(bad.refused.at(-1)).toMatch(reason);
      reasons.push(bad.refused.at(-1)!);
    }
    bad.tamper = undefined;
    await g.runUntil(() => false);
    expect(g.run.version).toBe(6);
    expect(g.run.counters.rejected).toBe(cases.length);
    for (const p of g.run.params) expect(Number.isFinite(p)).toBe(true);
    g.close();
  });
});

describe('parameter deltas', () => {
  test('after 200 rounds of int8 deltas, workers that joined at rounds 0 and 150 hold bit-identical parameters to the coordinator view', async () => {
    const g = grid({ ...base, batchPerTask: 8, compression: { up: 'none', down: 'int8' }, sync: { ...base.sync, minWorkers: 1 }, stop: { maxRounds: 200 } }, 1);
    await g.runUntil(() => g.run.version >= 150);
    g.addWorker('late');
    await g.runUntil(() => false);
    expect(g.run.version).toBe(200);
    const view = g.scheduler.channelById(g.run.id)!.view;
    expect(view.version).toBe(200);
    for (const id of ['w0', 'late']) {
      const r = g.workers.get(id)!.copy.replica!;
      expect(r.version).toBe(200);
      expect(Buffer.from(r.params.buffer).equals(Buffer.from(view.params.buffer))).toBe(true);
    }
    // Lossy, so the view lags the master parameters a little, but only a little.
    let worst = 0;
    for (let i = 0; i < view.params.length; i++) worst = Math.max(worst, Math.abs(view.params[i] - g.run.params[i]));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-3);
    g.close();
  });
});

function withFloat(b: Uint8Array, at: number, v: number): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer).setFloat32(at, v, true);
  return out;
}

function withUint(b: Uint8Array, at: number, v: number): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer).setUint32(at, v, true);
  return out;
}

describe('task examples on the wire', () => {
  test('a task names its examples as spans of the seeded epoch orders; re-queued ones travel as indices; the worker rebuilds the same list', () => {
    const cursor = new ExampleCursor(1000, 7);
    const reference = new ExampleCursor(1000, 7);
    cursor.next(990);
    reference.next(990);
    cursor.requeue([5, 6]);
    reference.requeue([5, 6]);
    const taken = cursor.take(20); // 2 re-queued, 10 from epoch 0, 8 from epoch 1
    expect(taken.loose).toBe(2);
    expect(taken.spans).toEqual([
      { epoch: 0, start: 990, count: 10 },
      { epoch: 1, start: 0, count: 8 },
    ]);
    expect(Array.from(taken.indices)).toEqual(Array.from(reference.next(20)));
    const meta = { count: 20, order: { examples: 1000, seed: 7, spans: taken.spans } };
    expect(Array.from(taskExamples(meta, taken.indices.subarray(0, 2)))).toEqual(Array.from(taken.indices));
    expect(() => taskExamples({ ...meta, count: 21 }, taken.indices.subarray(0, 2))).toThrow(/names 20 examples, its count is 21/);
    expect(() => taskExamples({ count: 5, order: { examples: 1000, seed: 7, spans: [{ epoch: 0, start: 998, count: 5 }] } }, new Uint32Array(0))).toThrow(/outside an epoch of 1000/);
  });

  test('local rounds send no task indices when nothing was re-queued: the worker walks the epoch order itself', async () => {
    const g = grid({ ...base, sync: { ...base.sync, mode: 'local', innerSteps: 8 }, stop: { maxRounds: 3 } }, 4);
    await g.runUntil(() => false);
    // Down: three commits' float32 parameters to 4 workers (their first came as a snapshot), and
    // no task indices at all (nothing was re-queued).
    const t = g.port.traffic.runs!.get(g.run.id)!;
    expect(t.socketOut).toBe(3 * 4 * codedBytes({ kind: 'none' }, g.run.paramCount));
    expect(g.run.version).toBe(3);
    g.close();
  });
});
