// Pipeline equivalence for layer-list models: a small CNN and a small transformer cut into P=2
// stages (at layer boundaries, by cost) reach the parameters that P=1 (one data-parallel worker
// on the whole model) reaches on the same batches. The real round logic runs through the
// in-memory port and a manual clock; the workers are the real CPU backends (the layer executor
// on the whole model, or on a stage's range through StageTaskRunner) on seeded synthetic data.
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { LayerCpuBackend } from '../client/worker/backend.ts';
import { cpuStageBackend, type StageBackend } from '../client/worker/stage-backend.ts';
import { StageTaskRunner } from '../client/worker/stage-task.ts';
import { taskGradient, type ExampleSource } from '../client/worker/task-gradient.ts';
import { ManualClock } from '../server/clock.ts';
import { MemoryPort } from '../server/memory-port.ts';
import { MemoryReplica } from '../server/params/memory-replica.ts';
import { float32From } from '../shared/binary.ts';
import { taskExamples } from '../shared/epoch-order.ts';
import { Run } from '../server/run.ts';
import { Scheduler } from '../server/scheduler.ts';
import { labelsPerExample } from '../shared/layers/head.ts';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { PROTOCOL_VERSION, type StageTask, type TaskMeta } from '../shared/protocol.ts';
import { createRng } from '../shared/rng.ts';
import { parseRunSpec } from '../shared/run-spec.ts';
import { partitionLayers } from '../shared/stage.ts';
import { expectClose } from './helpers/check-op.ts';

const ROUNDS = 3;

interface Case {
  name: string;
  layers: LayerConfig[];
  dataset: { name: string; features: number; classes: number; trainCount: number; shards: []; exampleShape: number[] };
  /** One example's inputs and labels from its index (the same on every worker). */
  example(i: number): { x: number[]; labels: number[] };
}

const CNN: Case = {
  name: 'CNN',
  layers: [{ kind: 'conv2d', out: 4, kernel: 3 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'flatten' }, { kind: 'dense', out: 10 }],
  dataset: { name: 'digits', features: 100, classes: 10, trainCount: 512, shards: [], exampleShape: [1, 10, 10] },
  example(i) {
    const rng = createRng(1000 + i);
    // Mostly-zero pixels, like MNIST's.
    return { x: Array.from({ length: 100 }, () => (rng.uniform(0, 1) < 0.3 ? rng.uniform(0, 1) : 0)), labels: [i % 10] };
  },
};

const T = 6;
const VOCAB = 9;
const TRANSFORMER: Case = {
  name: 'transformer',
  layers: [{ kind: 'embedding', vocab: VOCAB, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: VOCAB }],
  dataset: { name: 'text', features: T, classes: VOCAB, trainCount: 512, shards: [], exampleShape: [T] },
  example(i) {
    // A window of a text and its next characters: one label per position.
    const ids = Array.from({ length: T + 1 }, (_, p) => (i * 7 + p * (1 + (i % 3))) % VOCAB);
    return { x: ids.slice(0, T), labels: ids.slice(1) };
  },
};

const source = (c: Case): ExampleSource => ({
  batch: async (indices) => {
    const ex = [...indices].map((i) => c.example(i));
    return { x: Float32Array.from(ex.flatMap((e) => e.x)), labels: Uint32Array.from(ex.flatMap((e) => e.labels)) };
  },
});

/**
 * Trains ROUNDS rounds with `stages` stages (one replica) and returns the parameters. `poisonAt`:
 * at that version the last stage reports a loss of 10⁶ once (its refusals are returned).
 */
async function train(c: Case, stages: number, microBatches: number, poisonAt?: number, rounds = ROUNDS): Promise<{ params: Float32Array; run: Run; scheduler: Scheduler; refusals: string[] }> {
  const clock = new ManualClock(1_000_000);
  const port = new MemoryPort();
  const labels = (_run: Run, indices: Uint32Array) => Uint32Array.from([...indices].flatMap((i) => c.example(i).labels));
  const scheduler = new Scheduler({ port, traffic: port.traffic, log: pino({ level: 'silent' }), clock, evaluate: () => ({ loss: 0, accuracy: 0 }), labels });
  const spec = parseRunSpec({
    model: { layers: c.layers },
    optimizer: { kind: 'sgd', lr: 0.1 },
    globalBatch: 24,
    seed: 5,
    evalEvery: 100_000,
    stop: { maxRounds: rounds },
    parallelism: { stages, replicas: 1, microBatches },
    sync: { minWorkers: stages, roundDeadlineMs: 600_000 },
  });
  const run = new Run(spec, c.dataset);
  scheduler.addRun(run);
  const data = source(c);
  const failures: Error[] = [];
  const refusals: string[] = [];
  let poisoned = false;

  for (let k = 0; k < stages; k++) {
    const id = `w${k}`;
    const whole = new LayerCpuBackend(run.net.description, 64);
    const copy = new MemoryReplica((runId) => scheduler.channelById(runId));
    let stage: StageBackend | undefined;
    let slice: { offset: number; data: Float32Array } | undefined;
    const runner: { current?: StageTaskRunner } = {};
    const ready = (version: number) => clock.setTimeout(() => scheduler.ready(id, { runId: run.id, version }), 1);
    const report = (meta: TaskMeta, loss: number, grads: Float32Array) => {
      const poison = k === stages - 1 && meta.version === poisonAt && !poisoned;
      if (poison) poisoned = true;
      scheduler.result(id, { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: poison ? 1e6 : loss }, grads.slice().buffer, (ack) => {
        if (!ack.ok && poison) refusals.push(ack.error ?? '');
        // A refusal abandons the round: the other stage's result for it comes back late.
        else if (!ack.ok && !(poisoned && ack.error?.startsWith('late'))) failures.push(new Error(`${id}: ${ack.error}`));
        ready(meta.version + 1);
      });
    };
    port.connect(id, (msg) => {
      if (msg.kind === 'run' && msg.meta) ready(0);
      else if (msg.kind === 'params') {
        if (msg.meta.offset === undefined) whole.setParams(copy.receive(msg.meta, msg.data).params);
        else slice = { offset: msg.meta.offset, data: float32From(msg.data, true) };
      } else if (msg.kind === 'relay') runner.current?.receive(msg.meta, msg.data);
      else if (msg.kind === 'task') {
        const meta = msg.meta;
        if (!meta.stage) {
          void taskGradient(whole, data, taskExamples(meta, msg.data), () => true).then((out) => report(meta, out!.loss, out!.grads), (e: Error) => failures.push(e));
          return;
        }
        const st: StageTask = meta.stage;
        const plan = partitionLayers(run.net.description, st.stages)[st.index];
        stage ??= cpuStageBackend({ model: run.net.description, plan, maxMicroBatch: 64, maxMicroBatches: microBatches });
        expect(slice?.offset).toBe(st.paramOffset);
        stage.setParams(slice!.data);
        const r = new StageTaskRunner(meta as TaskMeta & { stage: StageTask }, msg.data, stage, {
          relay: (m, values) => scheduler.relay(id, m, values.slice().buffer),
          batch: (indices) => data.batch(indices),
        });
        runner.current = r;
        r.start();
        r.done.then((o) => report(meta, o.loss, o.grads), (e: Error) => failures.push(e));
      }
    });
    scheduler.join(id, { protocol: PROTOCOL_VERSION, backend: 'cpu', adapter: { vendor: '', architecture: '', description: '' } });
  }
  for (let i = 0; i < 20_000 && run.state === 'running' && failures.length === 0; i++) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  if (failures.length) throw failures[0];
  expect(run.state).toBe('completed');
  expect(run.version).toBe(rounds);
  expect(run.counters.rejected).toBe(refusals.length);
  return { params: run.params.slice(), run, scheduler, refusals };
}

describe('pipeline equivalence for layer lists: P=2 gives the parameters of P=1', () => {
  test.for([CNN, TRANSFORMER])('$name', async (c) => {
    const single = await train(c, 1, 1);
    const init = new Run(single.run.spec, c.dataset).params;
    expect(single.params.some((v, i) => Math.abs(v - init[i]) > 1e-4)).toBe(true); // it trained
    const plans = partitionLayers(single.run.net.description, 2);
    // Cut at a layer boundary, each side holding some of the work.
    expect(plans[0].endLayer).toBe(plans[1].firstLayer);
    expect(plans[1].paramOffset).toBe(plans[0].paramCount);
    for (const microBatches of [1, 3]) {
      const { params, run, scheduler } = await train(c, 2, microBatches);
      const stats = scheduler.pipeline.lastStats.get(run.id)!;
      expect(stats).toMatchObject({ stages: 2, replicas: 1, microBatches });
      // The relays carried the activations of the cut: rows × the shape at the boundary, each way, per round.
      const width = plans[0].outShape.reduce((a, b) => a * b, 1);
      expect(stats.relayedBytes).toBe(2 * 24 * width * 4);
      expect(labelsPerExample(run.net.description.outShape)).toBe(c === TRANSFORMER ? T : 1);
      expectClose(params, single.params, { atol: 2e-6, rtol: 1e-4 }, `${c.name} parameters with P=2 M=${microBatches}`);
    }
  });
});

test('a pipeline\'s last stage reporting an implausible loss is refused, its round redone, and the run goes on', async () => {
  // The loss window applies after 8 results: the poison comes at version 10 of 14.
  const { run, refusals } = await train(CNN, 2, 1, 10, 14);
  expect(refusals).toHaveLength(1);
  expect(refusals[0]).toMatch(/loss 1\.000e\+6 is implausible/);
  expect(run.loss).toBeLessThan(10);
  expect(run.metrics.every((p) => (p.loss ?? 0) < 10)).toBe(true);
});

