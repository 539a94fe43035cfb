// The synchronous round schedule, driven through the in-memory port with an injected clock:
// tasks follow each worker's measured speed (not what it claims), a round's tasks finish
// together, and a stalled worker's examples go to the others at its lease without holding them up.
import { describe, expect, test } from 'vitest';
import pino from 'pino';
import { taskExamples } from '../shared/epoch-order.ts';
import { PROTOCOL_VERSION, type TaskMeta } from '../shared/protocol.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { ManualClock } from '../server/clock.ts';
import { MemoryPort } from '../server/memory-port.ts';
import { Run } from '../server/run.ts';
import { Scheduler } from '../server/scheduler.ts';
import { PROBE_LEASE_MS, planRound, REPROBE_AFTER_ROUNDS } from '../server/task-sizing.ts';
import type { VerificationOptions } from '../server/verification/verification.ts';

interface FakeWorker {
  id: string;
  /** Examples/s it really computes at (virtual time). */
  speed: number;
  /** Never answers a task. */
  stalled?: boolean;
  /** Gives up its task number n (from 0) without a result, saying so in its next `ready`. */
  givesUp?: (n: number) => boolean;
  tasks: { sentAt: number; doneAt: number | null; examples: number; version: number; indices: Uint32Array }[];
  /** Until when it computes the tasks it holds: it computes one at a time, in the order they came. */
  busyUntil?: number;
}

/**
 * A run on the in-memory port; fake workers answer each task after examples/speed of virtual time
 * (one task at a time). `verification`: spot checks on (with this trust policy), off by default.
 */
function grid(specInput: RunSpecInput, workers: FakeWorker[], verification: VerificationOptions | false = false) {
  const clock = new ManualClock(1_000_000);
  const port = new MemoryPort();
  const scheduler = new Scheduler({ port, traffic: port.traffic, log: pino({ level: 'silent' }), clock, evaluate: () => ({ loss: 0, accuracy: 0 }), verification });
  const spec = parseRunSpec({ evalEvery: 100_000, ...specInput });
  const run = new Run(spec, { name: 'mnist', features: 784, classes: 10, trainCount: 10_000, shards: [] });
  scheduler.addRun(run);
  const gradient = new Float32Array(run.paramCount).fill(1e-4);
  const commits: number[] = [];
  scheduler.onCommit((_r, point) => commits.push(point.version));
  const join = (w: FakeWorker) => {
    port.connect(w.id, (msg) => {
      if (msg.kind === 'run' && msg.meta) clock.setTimeout(() => scheduler.ready(w.id, { runId: run.id, version: 0 }), 1);
      if (msg.kind !== 'task') return;
      const meta: TaskMeta = msg.meta;
      const record = { sentAt: clock.now(), doneAt: null as number | null, examples: meta.count, version: meta.version, indices: taskExamples(meta, msg.data) };
      w.tasks.push(record);
      if (w.stalled) return;
      if (w.givesUp?.(w.tasks.length - 1)) {
        clock.setTimeout(() => scheduler.ready(w.id, { runId: run.id, version: meta.version, dropped: meta.taskId }), 1);
        return;
      }
      const doneAt = Math.max(clock.now(), w.busyUntil ?? 0) + (meta.count * 1000) / w.speed;
      w.busyUntil = doneAt;
      clock.setTimeout(() => {
        record.doneAt = clock.now();
        scheduler.result(w.id, { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: 1 }, gradient.buffer.slice(0), (ack) => {
          if (ack.ok || ack.error?.startsWith('late')) clock.setTimeout(() => scheduler.ready(w.id, { runId: run.id, version: meta.version + 1 }), 2);
        });
      }, doneAt - clock.now());
    });
    scheduler.join(w.id, { protocol: PROTOCOL_VERSION, backend: 'cpu', adapter: { vendor: '', architecture: '', description: '' } });
  };
  workers.forEach(join);
  return { clock, scheduler, run, commits, join };
}

const worker = (id: string, speed: number, extra: Partial<FakeWorker> = {}): FakeWorker => ({ id, speed, tasks: [], ...extra });

describe('tasks sized by measured speed', () => {
  test('4 workers of speeds 4:1 get tasks in proportion and finish within one target round time', () => {
    const ws = [worker('fast-a', 4000), worker('fast-b', 4000), worker('slow-a', 1000), worker('slow-b', 1000)];
    const { clock, run } = grid({ sync: { targetRoundMs: 200, maxBatch: 100_000, minWorkers: 4 } }, ws);
    clock.advance(10_000);
    expect(run.version).toBeGreaterThan(20);
    // After the probe rounds, every round's tasks: examples in proportion to speed (±15 %).
    const byVersion = (v: number) => ws.map((w) => w.tasks.filter((t) => t.version === v));
    for (let v = 5; v < run.version; v++) {
      const tasks = byVersion(v);
      const examples = tasks.map((ts) => ts.reduce((a, t) => a + t.examples, 0));
      const total = examples.reduce((a, b) => a + b, 0);
      ws.forEach((w, i) => {
        const share = examples[i] / total;
        const expected = w.speed / 10_000;
        expect(Math.abs(share - expected) / expected, `round ${v}, ${w.id}: ${examples.join(' / ')}`).toBeLessThanOrEqual(0.15);
      });
      // Their last tasks end within one target round time of each other.
      const ends = tasks.map((ts) => Math.max(...ts.map((t) => t.doneAt ?? Infinity)));
      expect(Math.max(...ends) - Math.min(...ends), `round ${v} ends ${ends.join(', ')}`).toBeLessThanOrEqual(200);
    }
    // Nobody waits long: committed examples/s is most of what the four offer (10,000/s).
    const efficiency = run.samples / (10_000 * 10);
    expect(efficiency).toBeGreaterThan(0.9);
    // and the run says so where the admin page and the board read it
    const summary = run.summary(4);
    expect(summary.offeredSamplesPerSec).toBeGreaterThan(9_000);
    expect(summary.offeredSamplesPerSec).toBeLessThan(11_000);
    expect(summary.efficiency).toBeGreaterThan(0.85);
  });

  test('a worker claiming a high speed but computing slowly gets small tasks after its first round', () => {
    const liar = worker('liar', 200);
    const honest = worker('honest', 2000);
    const { clock, scheduler, run } = grid({ sync: { targetRoundMs: 500, maxBatch: 100_000, minWorkers: 2 } }, [liar, honest]);
    // It tells the coordinator it does a million examples a second.
    scheduler.status('liar', { paused: false, cap: 1, samplesPerSec: 1_000_000 });
    clock.advance(8_000);
    expect(run.version).toBeGreaterThan(5);
    const first = liar.tasks[0].examples;
    expect(first).toBe(64); // a probe of batchPerTask, whatever it claims
    for (const t of liar.tasks.slice(1)) expect(t.examples).toBeLessThanOrEqual(Math.ceil(200 * 0.5 * 1.3));
    // while the honest worker gets ten times as much per round
    const last = (w: FakeWorker) => w.tasks.filter((t) => t.version === run.version - 1).reduce((a, t) => a + t.examples, 0);
    expect(last(honest) / last(liar)).toBeGreaterThan(7);
    expect(scheduler.workers.get('liar')!.speed.perSec).toBeLessThan(250);
  });

  test('a stalled worker: its examples go to the others at its lease, and the others keep going', () => {
    const a = worker('a', 1000);
    const b = worker('b', 1000);
    const { clock, run, commits, join } = grid({ sync: { targetRoundMs: 300, maxBatch: 100_000, minWorkers: 1, roundDeadlineMs: 60_000 } }, [a, b]);
    clock.advance(3_000);
    expect(run.version).toBeGreaterThan(3);
    // A third worker joins, gets a probe task and never answers it.
    const stalled = worker('stalled', 1000, { stalled: true });
    join(stalled);
    const joinedAt = clock.now();
    clock.advance(30_000);
    expect(stalled.tasks).toHaveLength(1);
    const lost = stalled.tasks[0];
    // Its examples were computed by the others in the same round, after its lease ran out (a
    // first task's lease allows for fetching shards: PROBE_LEASE_MS plus three target rounds),
    // well before the 60 s round deadline.
    const retaken = [...a.tasks, ...b.tasks].filter((t) => t.version === lost.version && t.sentAt > lost.sentAt);
    const redone = new Set(retaken.flatMap((t) => [...t.indices]));
    expect([...lost.indices].every((i) => redone.has(i))).toBe(true);
    expect(Math.min(...retaken.map((t) => t.sentAt)) - lost.sentAt).toBeLessThanOrEqual(PROBE_LEASE_MS + 3 * 300);
    // The run went on: the round with the stalled task committed, and many after it.
    expect(commits).toContain(lost.version + 1);
    expect(run.version).toBeGreaterThan(lost.version + 20);
    expect(clock.now() - joinedAt).toBe(30_000);
    // No version committed twice or skipped.
    expect(commits).toEqual(Array.from({ length: commits.length }, (_, i) => i + 1));
    expect(run.counters.roundsTimedOut).toBe(0);
  });
});

describe('a worker that cannot compute a task', () => {
  test('says so in its next ready: the examples are handed on at once, not at the lease, and it keeps working', () => {
    const a = worker('a', 1000, { givesUp: (n) => n === 4 });
    const b = worker('b', 1000);
    const { clock, scheduler, run, commits } = grid({ sync: { targetRoundMs: 300, maxBatch: 100_000, minWorkers: 2, roundDeadlineMs: 60_000 } }, [a, b]);
    clock.advance(20_000);
    expect(a.tasks.length).toBeGreaterThan(10);
    const lost = a.tasks[4];
    // To the first worker free for them: here the one that gave them up (the other is computing its own).
    const retaken = [...a.tasks, ...b.tasks].filter((t) => t !== lost && t.version === lost.version && t.sentAt >= lost.sentAt);
    const redone = new Set(retaken.flatMap((t) => [...t.indices]));
    expect([...lost.indices].every((i) => redone.has(i))).toBe(true);
    // Within a few ms of virtual time (its lease would have been hundreds).
    expect(Math.min(...retaken.map((t) => t.sentAt)) - lost.sentAt).toBeLessThanOrEqual(10);
    // Not a wrong result: nothing rejected, and a's later tasks were folded.
    expect(run.counters.rejected).toBe(0);
    expect(a.tasks.slice(5).filter((t) => t.doneAt !== null).length).toBeGreaterThan(5);
    expect(commits).toEqual(Array.from({ length: commits.length }, (_, i) => i + 1));
    expect(run.counters.roundsTimedOut).toBe(0);
    // A ready that gives up nothing, while the worker holds a task, earns no second task.
    const open = () => a.tasks.filter((t) => t.doneAt === null && t !== lost);
    for (let i = 0; i < 200 && open().length === 0; i++) clock.advance(1);
    expect(open()).toHaveLength(1);
    const held = a.tasks.length;
    scheduler.ready('a', { runId: run.id, version: run.version });
    expect(a.tasks.length).toBe(held);
  });
});

describe('the batch cap never shuts a measured worker out for good', () => {
  const spec = parseRunSpec({ batchPerTask: 64, sync: { maxBatch: 1024 } });
  test('a worker fast enough for the round keeps its minimum task; the largest task gives way under the cap', () => {
    const plan = planRound(spec, [{ id: 'fast', speed: 20_000 }, { id: 'slower', speed: 1_000 }]);
    expect(plan.sizes[1]).toBeGreaterThanOrEqual(16);
    expect(plan.sizes[0] + plan.sizes[1]).toBeLessThanOrEqual(1024);
  });
  test('a worker measured too slow for the round sits out, and is measured again after a few rounds', () => {
    const workers = [{ id: 'fast', speed: 20_000 }, { id: 'stale', speed: 100, satOut: 0 }];
    expect(planRound(spec, workers).sizes[1]).toBe(0);
    const due = planRound(spec, [workers[0], { ...workers[1], satOut: REPROBE_AFTER_ROUNDS }]);
    expect(due.sizes[1]).toBe(16);
    expect(due.sizes[0] + due.sizes[1]).toBeLessThanOrEqual(1024);
  });
});

describe('spot checks planned into the round', () => {
  test('a round with a check takes about as long as one without: the checker computes fewer examples of its own', () => {
    const ws = ['a', 'b', 'c', 'd'].map((id) => worker(id, 2000));
    // A fifth of the tasks checked, whatever the record: many rounds with checks and many without.
    const { clock, run, scheduler } = grid({ sync: { targetRoundMs: 200, maxBatch: 100_000, minWorkers: 4 } }, ws, { policy: { newProbability: 0.2, floor: 0.2, decay: 1 } });
    clock.advance(20_000);
    expect(run.version).toBeGreaterThan(40);
    const withCheck: number[] = [];
    const without: number[] = [];
    for (let v = 5; v < run.version; v++) {
      const tasks = ws.flatMap((w) => w.tasks.filter((t) => t.version === v));
      // A check: the same examples given twice in the round.
      const seen = new Set(tasks.map((t) => t.indices.join(",")));
      const ms = Math.max(...tasks.map((t) => t.doneAt ?? Infinity)) - Math.min(...tasks.map((t) => t.sentAt));
      (seen.size < tasks.length ? withCheck : without).push(ms);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    console.log(`${withCheck.length} rounds with a check: median ${median(withCheck)} ms; ${without.length} without: ${median(without)} ms`);
    expect(withCheck.length).toBeGreaterThan(10);
    expect(without.length).toBeGreaterThan(10);
    // Planned in, a check costs its checker as many examples of its own, not a second round's time.
    expect(median(withCheck), `rounds with checks ${median(withCheck)} ms, without ${median(without)} ms`).toBeLessThanOrEqual(1.25 * median(without));
    const { stats } = scheduler.verification.report(run.id);
    expect(stats.agreed).toBeGreaterThan(10);
    expect(stats.unsettled).toBe(0);
    expect(run.counters.roundsTimedOut).toBe(0);
  });
});
