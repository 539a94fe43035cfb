// Evaluation off the event loop: the evaluation thread's numbers are the plain-loop reference's
// (a classifier and a small language model), one evaluation runs at a time per run with only the
// latest queued, and the coordinator keeps committing rounds while an evaluation is in flight,
// its numbers landing later on the point of the version it measured.
import { afterEach, describe, expect, test } from 'vitest';
import pino from 'pino';
import { ManualClock } from '../server/clock.ts';
import { EvalThread } from '../server/eval-thread.ts';
import { Evaluator } from '../server/evaluator.ts';
import { MemoryPort } from '../server/memory-port.ts';
import { Run } from '../server/run.ts';
import { Scheduler, type Evaluation } from '../server/scheduler.ts';
import type { Dataset } from '../shared/dataset.ts';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { describeModel, forwardRange, initModelParams } from '../shared/layers/sequence.ts';
import { expandLayers } from '../shared/layers/shorthand.ts';
import { PROTOCOL_VERSION, type TaskMeta } from '../shared/protocol.ts';
import { createRng } from '../shared/rng.ts';
import { parseRunSpec } from '../shared/run-spec.ts';

/** Accuracy and mean cross-entropy per label through the reference kernels, in float64 sums. */
function reference(layers: LayerConfig[], inputShape: number[], params: Float32Array, ds: Dataset, inputs: Float32Array): Evaluation {
  const model = describeModel(layers, inputShape);
  const { y } = forwardRange(model, params, inputs, ds.count);
  const classes = model.outShape[model.outShape.length - 1];
  const rows = y.length / classes;
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const row = Array.from(y.subarray(r * classes, (r + 1) * classes));
    const max = Math.max(...row);
    loss += Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) + max - row[ds.y[r]];
    if (row.indexOf(max) === ds.y[r]) correct++;
  }
  return { accuracy: correct / rows, loss: loss / rows };
}

const rng = createRng(11);

/** `count` examples of `features` scaled bytes, labels in [0, classes). */
function images(count: number, features: number, classes: number): Dataset {
  const x = Uint8Array.from({ length: count * features }, () => Math.floor(rng.uniform(0, 256)));
  const y = Uint8Array.from({ length: count }, () => Math.floor(rng.uniform(0, classes)));
  return { count, features, classes, x, y };
}

/** `count` token windows of length `t` over `vocab`, each position labelled with the next token. */
function windows(count: number, t: number, vocab: number): Dataset {
  const text = Uint8Array.from({ length: count * t + 1 }, () => Math.floor(rng.uniform(0, vocab)));
  const x = new Uint8Array(count * t);
  const y = new Uint8Array(count * t);
  for (let i = 0; i < count; i++) {
    x.set(text.subarray(i * t, (i + 1) * t), i * t);
    y.set(text.subarray(i * t + 1, (i + 1) * t + 1), i * t);
  }
  return { count, features: t, classes: vocab, x, y, labelWidth: t, inputs: 'tokens' };
}

describe('the evaluation thread', () => {
  let thread: EvalThread | undefined;
  afterEach(async () => {
    await thread?.close();
    thread = undefined;
  });

  test("its numbers are the reference's: a classifier, and a language model (per position, next-token accuracy)", async () => {
    thread = new EvalThread();
    const cls = images(37, 12, 5);
    const clsLayers: LayerConfig[] = [{ kind: 'dense', out: 9 }, { kind: 'relu' }, { kind: 'dense', out: 5 }];
    const clsParams = initModelParams(describeModel(clsLayers, [12]), 3);
    const lm = windows(7, 8, 11);
    const lmLayers = expandLayers([{ kind: 'embedding', vocab: 11, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'dense', out: 11 }]);
    const lmParams = initModelParams(describeModel(lmLayers, [8]), 5);

    const [clsEv, lmEv] = await Promise.all([
      thread.evaluate('a', { key: 'cls:37', examples: () => cls, layers: clsLayers, inputShape: [12], params: clsParams }),
      thread.evaluate('b', { key: 'lm:7', examples: () => lm, layers: lmLayers, inputShape: [8], params: lmParams }),
    ]);
    const clsRef = reference(clsLayers, [12], clsParams, cls, Float32Array.from(cls.x, (v) => v / 255));
    const lmRef = reference(lmLayers, [8], lmParams, lm, Float32Array.from(lm.x));
    expect(clsEv!.accuracy).toBe(clsRef.accuracy);
    expect(clsEv!.loss).toBeCloseTo(clsRef.loss, 5);
    expect(lmEv!.accuracy).toBe(lmRef.accuracy);
    expect(lmEv!.loss).toBeCloseTo(lmRef.loss, 5);
    // Near the uniform loss (ln 11) for a model at its initialisation: it is per position, not per window.
    expect(Math.abs(lmEv!.loss - Math.log(11))).toBeLessThan(0.5);
    // The inline evaluator (tests, the simulator) gives the thread's numbers exactly.
    expect(new Evaluator(lm).evaluate({ description: describeModel(lmLayers, [8]) }, lmParams)).toEqual(lmEv);
  });

  test('one evaluation at a time per run: a newer request supersedes the queued one; close answers null', async () => {
    thread = new EvalThread();
    const ds = images(20, 6, 3);
    const layers: LayerConfig[] = [{ kind: 'dense', out: 3 }];
    const model = describeModel(layers, [6]);
    const job = (seed: number) => ({ key: 'k', examples: () => ds, layers, inputShape: [6], params: initModelParams(model, seed) });
    const first = thread.evaluate('run', job(1));
    const superseded = thread.evaluate('run', job(2));
    const latest = thread.evaluate('run', job(3));
    expect(thread.busy('run')).toBe(true);
    expect(await superseded).toBeNull();
    const inline = new Evaluator(ds);
    expect(await first).toEqual(inline.evaluate({ description: model }, initModelParams(model, 1)));
    expect(await latest).toEqual(inline.evaluate({ description: model }, initModelParams(model, 3)));
    expect(thread.started).toBe(2);
    expect(thread.busy('run')).toBe(false);
    const cut = thread.evaluate('run', job(4));
    await thread.close();
    expect(await cut).toBeNull();
  });
});

describe('the coordinator while an evaluation is in flight', () => {
  test('rounds keep committing; the numbers land on the evaluated version, the stop rule follows them, a late one after completion changes nothing', async () => {
    const clock = new ManualClock(1_000_000);
    const port = new MemoryPort();
    // Evaluations answered only when the test says so.
    const asked = new Map<number, (e: Evaluation | null) => void>();
    const scheduler = new Scheduler({
      port,
      traffic: port.traffic,
      log: pino({ level: 'silent' }),
      clock,
      evaluate: (r) => new Promise((resolve) => asked.set(r.version, resolve)),
    });
    const run = new Run(parseRunSpec({ evalEvery: 2, stop: { targetLoss: 1 }, sync: { taskSizing: 'fixed' } }), { name: 'mnist', features: 784, classes: 10, trainCount: 10_000, shards: [] });
    scheduler.addRun(run);
    const evaluated: number[] = [];
    scheduler.onEvaluated((_r, version, point) => evaluated.push(point ? version : -version));
    const updates: (number | null)[] = [];
    const gradient = new Float32Array(run.paramCount).fill(1e-4);
    port.connect('w', (msg) => {
      if (msg.kind === 'run-update') updates.push(msg.meta.accuracy);
      if (msg.kind === 'run' && msg.meta) clock.setTimeout(() => scheduler.ready('w', { runId: run.id, version: 0 }), 1);
      if (msg.kind !== 'task') return;
      const meta: TaskMeta = msg.meta;
      clock.setTimeout(() => {
        scheduler.result('w', { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: 2 }, gradient.buffer.slice(0), (ack) => {
          if (ack.ok) clock.setTimeout(() => scheduler.ready('w', { runId: run.id, version: meta.version + 1 }), 2);
        });
      }, 10);
    });
    scheduler.join('w', { protocol: PROTOCOL_VERSION, backend: 'cpu', adapter: { vendor: '', architecture: '', description: '' } });
    const settle = () => new Promise((r) => setImmediate(r));

    clock.advance(1_000);
    // No evaluation has answered, and rounds went on: every second version asked for one.
    expect(run.version).toBeGreaterThan(20);
    expect([...asked.keys()]).toEqual(Array.from({ length: Math.floor(run.version / 2) }, (_, i) => 2 * (i + 1)));
    expect(run.metrics.every((p) => p.accuracy === null && p.evalLoss === null)).toBe(true);
    expect(run.evaluating.size).toBe(asked.size);

    asked.get(4)!({ accuracy: 0.5, loss: 1.5 });
    await settle();
    const at = (v: number) => run.metrics.find((p) => p.version === v)!;
    expect(at(4)).toMatchObject({ accuracy: 0.5, evalLoss: 1.5 });
    expect([run.accuracy, run.evalLoss, run.state]).toEqual([0.5, 1.5, 'running']);
    expect(evaluated).toEqual([4]);
    expect(updates.at(-1)).toBe(0.5);
    asked.get(2)!({ accuracy: 0.1, loss: 3 }); // older than the numbers held: dropped
    asked.get(8)!(null); // skipped by the evaluator: nothing to record
    await settle();
    expect([run.accuracy, at(2).accuracy, at(8).accuracy]).toEqual([0.5, null, null]);

    const before = run.version;
    clock.advance(500);
    expect(run.version).toBeGreaterThan(before);
    asked.get(10)!({ accuracy: 0.9, loss: 0.8 });
    await settle();
    expect(run.state).toBe('completed');
    expect(run.stopReason).toMatch(/held-out loss 0\.8000 <= 1/);
    expect(at(10)).toMatchObject({ accuracy: 0.9, evalLoss: 0.8 });
    const stoppedAt = run.version;
    clock.advance(1_000);
    expect(run.version).toBe(stoppedAt);

    // An evaluation that lands after the run completed: recorded, nothing else.
    asked.get(12)!({ accuracy: 0.95, loss: 0.7 });
    await settle();
    expect(run.state).toBe('completed');
    expect(at(12).evalLoss).toBe(0.7);
    expect(evaluated).toEqual([4, 10, 12]);
    scheduler.close();
  });
});
