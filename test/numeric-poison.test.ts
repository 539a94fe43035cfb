// Numeric poison: a worker whose results carry NaN, Infinity, 1e30, the wrong length, the wrong
// version or another worker's task. Each is refused before it reaches the round's accumulator, with
// its reason in the run's event log, and none of its values reaches the parameters. Two controls:
// a run in which the worker sent only honest results, and one in which the four poisoned results
// were replaced by results refused for a reason that carries no values (a negative loss). A refused
// result's task is taken back and its examples computed by whichever worker is free next, so with
// the mean (which folds examples, whoever computed them) the run equals the honest control to float
// rounding; with centered clipping (one vote per worker) it equals the refused control.
import { describe, expect, test } from 'vitest';
import { DatasetRegistry } from '../server/data/registry.ts';
import { EventLog, type RunEvent } from '../server/event-log.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import type { TaskResult } from '../shared/protocol.ts';
import { sharedDataDir } from './helpers/coordinator.ts';
import { MemoryGrid } from './helpers/memory-grid.ts';

const ROUNDS = 8;

const spec = (aggregation: RunSpecInput['aggregation']): RunSpecInput => ({
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 16, 10] },
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchPerTask: 16,
  seed: 3,
  evalEvery: 1000,
  sync: { taskSizing: 'fixed', minWorkers: 3 },
  ...(aggregation ? { aggregation } : {}),
  stop: { maxRounds: ROUNDS },
});

/** What the poisoning worker does in the round of each version, and the reason the log must give. */
const POISON: Record<number, { kind: string; reason: RegExp }> = {
  1: { kind: 'NaN', reason: /gradient value \d+ is NaN/ },
  2: { kind: 'Infinity', reason: /gradient value \d+ is Infinity/ },
  3: { kind: '1e30', reason: /gradient norm .* exceeds the bound/ },
  4: { kind: 'wrong length', reason: /gradient has \d+ values, the model has \d+/ },
  5: { kind: 'wrong version', reason: /computed on version 4, the round is at 5/ },
  6: { kind: "another worker's task", reason: /belongs to another worker/ },
};

function poisoned(bytes: Uint8Array, kind: string): Uint8Array {
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (kind === 'NaN') values[17] = NaN;
  if (kind === 'Infinity') values[values.length - 1] = Infinity;
  if (kind === '1e30') values.fill(1e30);
  if (kind === 'wrong length') return new Uint8Array(values.buffer, 0, values.byteLength - 4);
  return new Uint8Array(values.buffer);
}

type Mode = 'honest' | 'poison' | 'refused';

async function train(aggregation: RunSpecInput['aggregation'], mode: Mode): Promise<{ g: MemoryGrid; events: RunEvent[]; initial: Float32Array }> {
  const events: RunEvent[] = [];
  const log = new EventLog();
  log.subscribe((e) => events.push(e));
  const g = new MemoryGrid(parseRunSpec(spec(aggregation)), new DatasetRegistry(sharedDataDir).get('mnist-10k')!, { events: log });
  // The open task of each worker, to name another worker's task.
  const openTask = new Map<string, string>();
  const send = g.port.task.bind(g.port);
  g.port.task = (id, meta, data) => {
    openTask.set(id, meta.taskId);
    send(id, meta, data);
  };
  const [mallory] = ['a', 'b', 'c'].map((id) => g.addWorker(id));
  if (mode !== 'honest') {
    const done = new Set<number>();
    mallory.tamper = (bytes, meta) => {
      const p = POISON[meta.version];
      if (!p || done.has(meta.version)) return { bytes, meta };
      done.add(meta.version);
      const extra = (m: TaskResult) => g.scheduler.result('a', m, bytes, (ack) => mallory.refused.push(ack.error ?? ''));
      // Refused without costing the task: the honest result follows.
      if (mode === 'poison' && p.kind === 'wrong version') extra({ ...meta, version: meta.version - 1 });
      if (mode === 'poison' && p.kind === "another worker's task") extra({ ...meta, taskId: openTask.get('b')! });
      if (p.kind === 'wrong version' || p.kind === "another worker's task") return { bytes, meta };
      // Refused, and the task with it: its examples go to the next free worker.
      return mode === 'poison' ? { bytes: poisoned(bytes, p.kind), meta } : { bytes, meta: { ...meta, loss: -1 } };
    };
  }
  const initial = g.run.params.slice();
  await g.runUntil(() => false);
  g.close();
  return { g, events, initial };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]))));
  return worst;
}

describe('numeric poison', () => {
  test.each([
    ['mean', 'honest' as const, { rule: 'mean' as const }],
    ['the public default (centered-clip)', 'refused' as const, undefined],
  ])("with %s: NaN, Infinity, 1e30, wrong length, wrong version and another worker's task are refused with their reasons; the parameters equal the %s control's", async (_name, equalTo, aggregation) => {
    const { g, events } = await train(aggregation, 'poison');
    const control = await train(aggregation, equalTo);
    expect(g.run.version).toBe(ROUNDS);
    expect(control.g.run.version).toBe(ROUNDS);

    const rejects = events.filter((e) => e.kind === 'reject');
    expect(rejects.map((e) => e.workerId)).toEqual(new Array(6).fill('a'));
    Object.values(POISON).forEach((p, i) => expect(rejects[i].message, p.kind).toMatch(p.reason));
    expect(g.run.counters.rejected).toBe(6);

    // Nothing of the poison reached the parameters: the same examples trained, the same values to float rounding.
    expect(g.run.samples).toBe(control.g.run.samples);
    expect(g.run.params.every(Number.isFinite)).toBe(true);
    expect(maxDiff(g.run.params, control.g.run.params)).toBeLessThan(1e-6);
    // And the control moved: equal parameters are not equal for having stood still.
    expect(maxDiff(control.g.run.params, control.initial)).toBeGreaterThan(1e-3);
  });
});
