// Spot checks and the checks on every result, on the real scheduler and rounds: the in-memory
// grid's workers compute real gradients on the CPU; one hostile worker sends 3 × its gradient.
// Its tasks are checked against another worker's, it is struck and banned within a bounded number
// of its tasks, nothing of it is folded once it is found out, and its browser id stays out; honest
// workers are never struck. Then results that are refused before any check: another version,
// another worker's task, a lease run out, an implausible loss, a run the worker does not serve;
// each with its reason in the run's event log. Then, over sockets, a banned browser is refused at
// join until the admin lifts the ban.
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { ManualClock } from '../server/clock.ts';
import { DatasetRegistry } from '../server/data/registry.ts';
import { EventLog } from '../server/event-log.ts';
import { MemoryPort, type PortMessage } from '../server/memory-port.ts';
import { Run } from '../server/run.ts';
import { Scheduler } from '../server/scheduler.ts';
import { DEFAULT_TRUST_POLICY } from '../server/verification/trust.ts';
import { identityOf } from '../server/verification/verification.ts';
import { PROTOCOL_VERSION, type TaskMeta } from '../shared/protocol.ts';
import { encodeUpdate, foldUpdate } from '../shared/update-codec.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { MemoryGrid, MemoryWorker } from './helpers/memory-grid.ts';
import { sharedDataDir, startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const dataset = () => new DatasetRegistry(sharedDataDir).get('mnist-10k')!;
const hello = (browserId?: string) => ({ protocol: PROTOCOL_VERSION, backend: 'cpu' as const, adapter: { vendor: 'test', architecture: '', description: '' }, ...(browserId ? { browserId } : {}) });

const spec = (rounds: number, seed = 11): RunSpecInput => ({
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 32, 10] },
  optimizer: { kind: 'sgd', lr: 0.1 },
  aggregation: { rule: 'mean' },
  batchPerTask: 32,
  seed,
  evalEvery: rounds,
  sync: { taskSizing: 'fixed', minWorkers: 3 },
  stop: { maxRounds: rounds },
});

/** A grid worker joined with a browser id of its own. */
function join(g: MemoryGrid, id: string, browserId: string): MemoryWorker {
  const w = new MemoryWorker(id, g);
  g.workers.set(id, w);
  g.port.connect(id, (msg) => w.receive(msg));
  g.scheduler.join(id, hello(browserId));
  return w;
}

describe('spot checks', () => {
  test.each([11, 12, 13, 14, 15])('a worker sending 3 × its gradient is banned within 10 of its results, folded no more once struck, and kept out; honest workers are never struck (seed %i)', async (seed) => {
    const g = new MemoryGrid(parseRunSpec(spec(40, seed)), dataset(), { evalExamples: 100 });
    g.scheduler.verification.policy = { ...DEFAULT_TRUST_POLICY };
    const honest = ['h0', 'h1', 'h2'].map((id) => join(g, id, `browser-${id}`));
    const hostile = join(g, 'bad', 'browser-bad');
    const entry = g.scheduler.workers.get('bad')!;
    const key = identityOf(entry);
    const trust = () => g.scheduler.verification.report(g.run.id).workers.find((r) => r.key === key);
    /** For each result it sent: its strikes then and the tasks of its credited so far. */
    const sent: { strikes: number; credited: number }[] = [];
    hostile.tamper = (bytes, meta) => {
      sent.push({ strikes: trust()?.strikes ?? 0, credited: entry.tasksDone });
      const wrong = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      for (let j = 0; j < wrong.length; j++) wrong[j] *= 3;
      return { bytes: new Uint8Array(wrong.buffer), meta };
    };
    await g.runUntil(() => false);
    expect(g.run.version).toBe(40);
    const report = g.scheduler.verification.report(g.run.id);
    const first = sent.findIndex((s) => s.strikes > 0);
    // Banned, after at most 10 results of its own (tasks and checks it computed), and gone from the run.
    expect(report.bans.map((b) => b.key)).toEqual(['browser-bad']);
    expect(trust()!.strikes).toBe(DEFAULT_TRUST_POLICY.strikesToBan);
    console.log(`hostile worker: banned after ${sent.length} results of its own (first strike at its result ${first + 1}); checks ${report.stats.checks}, disagreements ${report.stats.disagreements}`);
    expect(sent.length, `results the hostile worker sent before its ban: ${sent.length}`).toBeLessThanOrEqual(10);
    expect(g.scheduler.workers.get('bad')).toBeUndefined();
    // From its first strike on, none of its results was folded (its credited tasks stayed put).
    expect(first).toBeGreaterThan(-1);
    expect(entry.tasksDone).toBe(sent[first].credited);
    // Its browser id cannot rejoin the run; another browser can.
    expect(g.scheduler.banFor({ browserId: 'browser-bad' })?.reason).toMatch(/banned after 3 strikes/);
    expect(g.scheduler.banFor({ browserId: 'browser-new' })).toBeUndefined();
    // Honest workers: never struck, many of their results checked and agreed.
    for (const r of report.workers.filter((r) => r.key !== key)) expect(r.strikes, r.key).toBe(0);
    expect(report.stats.agreed).toBeGreaterThan(3);
    expect(report.stats.maxAgreeingDifference).toBe(0); // the same CPU code on the same examples: bit for bit
    expect(honest.every((w) => w.refused.length === 0)).toBe(true);
    g.close();
  }, 60_000);

  test('honest workers over a whole run: none struck, and how much work the checks cost', async () => {
    const g = new MemoryGrid(parseRunSpec(spec(150)), dataset(), { evalExamples: 500 });
    g.scheduler.verification.policy = { ...DEFAULT_TRUST_POLICY };
    for (const id of ['a', 'b', 'c', 'd']) join(g, id, `browser-${id}`);
    await g.runUntil(() => false);
    expect(g.run.version).toBe(150);
    const { stats, workers, bans } = g.scheduler.verification.report(g.run.id);
    expect(bans).toEqual([]);
    expect(workers.every((w) => w.strikes === 0)).toBe(true);
    expect(stats.disagreements).toBe(0);
    expect(stats.checks).toBeGreaterThan(10);
    // Trust grows: the chance of a check has fallen from 0.3 towards the floor.
    for (const w of workers) expect(w.probability).toBeLessThan(0.1);
    const overhead = stats.replicaExamples / g.run.samples;
    console.log(`spot checks on 4 honest workers, 150 rounds: ${stats.checks} checks, ${stats.agreed} agreed, replication overhead ${(100 * overhead).toFixed(1)} % of the examples folded`);
    expect(overhead).toBeLessThan(0.15);
    g.close();
  }, 60_000);

  test('a worker that goes silent does not hold checked rounds to their deadline', async () => {
    const g = new MemoryGrid(parseRunSpec({ ...spec(60), sync: { taskSizing: 'fixed', minWorkers: 2 } }), dataset(), { evalExamples: 100 });
    g.scheduler.verification.policy = { ...DEFAULT_TRUST_POLICY, newProbability: 1, floor: 1, decay: 1 };
    const [, b] = ['a', 'b', 'c'].map((id) => join(g, id, `browser-${id}`));
    await g.runUntil(() => g.run.version >= 10);
    // 'c' has been timed (the coordinator counts on it), then stays connected but hears and answers nothing.
    g.scheduler.workers.get('c')!.speed.observe(32, 100);
    g.port.connect('c', () => {});
    // One wrong result of 'b': its check disagrees, and only 'c' could be the third.
    let results = 0;
    const timedOutBefore = () => g.run.counters.roundsTimedOut;
    let timedOutAtWrong = -1;
    b.tamper = (bytes, meta) => {
      if (++results !== 5) return { bytes, meta };
      timedOutAtWrong = timedOutBefore();
      const wrong = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).map((x) => 2 * x);
      return { bytes: new Uint8Array(wrong.buffer), meta };
    };
    await g.runUntil(() => false);
    expect(g.run.version).toBe(60);
    // Only the round 'c' went silent in (holding a task) may close at its deadline; the disagreement's round does not.
    expect(g.run.counters.roundsTimedOut).toBeLessThanOrEqual(1);
    expect(g.run.counters.roundsTimedOut).toBe(timedOutAtWrong);
    const { stats, bans, workers } = g.scheduler.verification.report(g.run.id);
    // The disagreement waited for a third worker, then was given up: neither result folded, no one struck.
    expect(stats.disagreements).toBe(1);
    expect(stats.unsettled).toBe(1);
    expect(workers.every((w) => w.strikes === 0)).toBe(true);
    expect(bans).toEqual([]);
    g.close();
  }, 60_000);

  test('fp16 results carry each worker\'s own error-feedback residual: honest ones still agree, a 1.1 × result does not', async () => {
    const g = new MemoryGrid(parseRunSpec({ ...spec(30), compression: 'fp16' }), dataset(), { evalExamples: 100 });
    // Every task checked: each agreement is a measurement.
    g.scheduler.verification.policy = { ...DEFAULT_TRUST_POLICY, newProbability: 1, floor: 1, decay: 1 };
    for (const id of ['a', 'b', 'c']) join(g, id, `browser-${id}`);
    const bad = join(g, 'bad', 'browser-bad');
    bad.tamper = (bytes, meta) => {
      // Decoded, scaled by 1.1 and coded again: a result only 10 % off.
      const v = new Float32Array(bytes.byteLength / 2);
      foldUpdate({ kind: 'fp16' }, bytes, v.length, 1.1, v);
      return { bytes: encodeUpdate({ kind: 'fp16' }, v), meta };
    };
    await g.runUntil(() => false);
    const { stats, workers } = g.scheduler.verification.report(g.run.id);
    console.log(`fp16: ${stats.agreed} checks agreed, largest relative difference ${stats.maxAgreeingDifference.toExponential(2)}; smallest disagreeing ${stats.minDisagreeingDifference?.toExponential(2)}`);
    expect(stats.maxAgreeingDifference).toBeLessThan(g.scheduler.verification.tolerance.fp16! / 5);
    for (const w of workers.filter((w) => w.key !== 'browser-bad')) expect(w.strikes, w.key).toBe(0);
    expect(workers.find((w) => w.key === 'browser-bad')!.banned).toBe(true);
    g.close();
  }, 60_000);
});

describe('every result is checked before use', () => {
  let coord: TestCoordinator | undefined;
  afterEach(async () => {
    await coord?.close();
    coord = undefined;
  });

  test('another version, another worker\'s task, a lease run out, an implausible loss, another run: refused with the reason in the event log', async () => {
    const clock = new ManualClock(0);
    const port = new MemoryPort();
    const events = new EventLog();
    const log: string[] = [];
    events.subscribe((e) => log.push(`${e.kind}: ${e.message}`));
    const scheduler = new Scheduler({ port, clock, log: pino({ level: 'silent' }), evaluate: () => ({ loss: 0, accuracy: 0 }), events });
    const run = new Run(parseRunSpec({ ...spec(1000), sync: { taskSizing: 'fixed', minWorkers: 2 } }), dataset().info, 'checks');
    scheduler.addRun(run);
    const other = new Run(parseRunSpec(spec(10)), dataset().info, 'other');
    const tasks = new Map<string, TaskMeta[]>();
    for (const id of ['a', 'b']) {
      tasks.set(id, []);
      port.connect(id, (msg: PortMessage) => {
        if (msg.kind === 'task') tasks.get(id)!.push(msg.meta);
        // Holds whatever was published: ready again for the next round.
        if (msg.kind === 'params' || (msg.kind === 'run' && msg.meta)) queueMicrotask(() => scheduler.ready(id, { runId: run.id, version: run.version }));
      });
      scheduler.join(id, hello());
    }
    await new Promise((r) => setTimeout(r, 0));
    scheduler.addRun(other); // the workers stay with the run they serve
    const zeros = new Uint8Array(4 * run.paramCount);
    const send = (worker: string, meta: TaskMeta, patch: Partial<{ version: number; loss: number; runId: string }> = {}) =>
      new Promise<string | undefined>((resolve) =>
        scheduler.result(worker, { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: 2.3, ...patch }, zeros, (ack) => resolve(ack.ok ? undefined : ack.error)),
      );
    const latest = (id: string) => tasks.get(id)!.at(-1)!;
    // Ten honest rounds: the run learns what its losses look like.
    for (let round = 0; round < 10; round++) {
      await new Promise((r) => setTimeout(r, 0));
      expect(await send('a', latest('a'))).toBeUndefined();
      expect(await send('b', latest('b'))).toBeUndefined();
    }
    await new Promise((r) => setTimeout(r, 0));
    expect(run.version).toBe(10);
    const a = latest('a');
    const b = latest('b');
    expect(await send('a', a, { version: a.version + 1 })).toMatch(/computed on version 11, the round is at 10/);
    expect(await send('b', a)).toMatch(new RegExp(`task ${a.taskId} belongs to another worker`));
    expect(await send('a', a, { loss: 1e6 })).toMatch(/loss 1\.000e\+6 is implausible: the run's recent results have a median loss of 2\.300/);
    expect(await send('b', b, { loss: Number.NaN })).toMatch(/loss must be a finite number >= 0, got NaN/);
    expect(await send('b', b, { runId: other.id })).toMatch(new RegExp(`this worker serves run ${run.id}, not ${other.id}`));
    // A worker asks for work again after a refusal (as the page does): it gets a new task; its lease runs out, the result comes late.
    const before = tasks.get('a')!.length;
    scheduler.ready('a', { runId: run.id, version: run.version });
    scheduler.ready('b', { runId: run.id, version: run.version });
    await new Promise((r) => setTimeout(r, 0));
    expect(tasks.get('a')!.length).toBe(before + 1);
    const c = latest('a');
    clock.advance(c.leaseMs + 1);
    expect(await send('a', c)).toMatch(/late: its lease ran out/);
    // Each refusal is in the run's event log with its reason; the run trained on.
    for (const reason of [/reject: .*computed on version 11/, /reject: .*belongs to another worker/, /reject: .*loss 1\.000e\+6 is implausible/, /reject: .*got NaN/, /reject: .*this worker serves run/, /late: .*its lease ran out/]) {
      expect(log.some((line) => reason.test(line)), String(reason)).toBe(true);
    }
    expect(run.state).toBe('running');
    scheduler.close();
  });

  test('over sockets: a banned tab is told why and cut off, its browser id is refused at join, and the admin lifts the ban', async () => {
    const token = 'spot-check-admin-token-0123456789';
    coord = await startCoordinator({ adminToken: token, defaultRun: { ...spec(100000), sync: { taskSizing: 'fixed', minWorkers: 1 } } });
    const { scheduler, store } = coord.app.crowdtrain;
    const run = [...scheduler.runs.values()][0];
    const tab = startCpuWorker(coord.url, { hello: { browserId: 'tab-browser-0001' } });
    await waitFor(() => tab.stats.tasksDone > 0, 20_000, 'the tab to compute');
    const entry = [...scheduler.workers.values()].find((w) => w.hello.browserId === 'tab-browser-0001')!;
    // Found out three times (as the spot checks would): banned, told why, disconnected.
    for (let i = 0; i < 3; i++) scheduler.verification.strike(run.id, 'tab-browser-0001', entry.id, 'cpu', `wrong result ${i + 1}`);
    await waitFor(() => tab.stats.state === 'refused', 5_000, 'the tab to hear of its ban');
    expect(tab.stats.message).toMatch(/banned from run .*: banned after 3 strikes; last: wrong result 3/);
    await waitFor(() => !scheduler.workers.get(entry.id), 5_000, 'the banned worker to leave');
    tab.stop();
    // The ban is kept in the store (a restart keeps it) and listed for the admin.
    expect(JSON.parse(store.getSetting(`bans:${run.id}`)!)).toMatchObject([{ key: 'tab-browser-0001' }]);
    const auth = { authorization: `Bearer ${token}` };
    expect((await coord.app.inject({ url: `/api/runs/${run.id}/trust` })).statusCode).toBe(401);
    const trust = (await coord.app.inject({ url: `/api/runs/${run.id}/trust`, headers: auth })).json();
    expect(trust.bans.map((b: { key: string }) => b.key)).toEqual(['tab-browser-0001']);
    expect(trust.workers.find((w: { key: string }) => w.key === 'tab-browser-0001')).toMatchObject({ strikes: 3, banned: true });
    // A reload (the same browser id) is refused at join, with the reason.
    const reload = startCpuWorker(coord.url, { hello: { browserId: 'tab-browser-0001' } });
    await waitFor(() => reload.stats.state === 'refused', 5_000, 'the reload to be refused');
    expect(reload.stats.message).toMatch(/this browser is banned from run .*banned after 3 strikes/);
    reload.stop();
    // The admin lifts it; the browser joins and computes again.
    expect((await coord.app.inject({ method: 'DELETE', url: `/api/runs/${run.id}/bans/nobody-0000`, headers: auth })).statusCode).toBe(404);
    expect((await coord.app.inject({ method: 'DELETE', url: `/api/runs/${run.id}/bans/tab-browser-0001`, headers: auth })).json()).toEqual({ ok: true });
    const again = startCpuWorker(coord.url, { hello: { browserId: 'tab-browser-0001' } });
    await waitFor(() => again.stats.tasksDone > 0, 20_000, 'the forgiven tab to compute');
    again.stop();
    expect(JSON.parse(store.getSetting(`bans:${run.id}`)!)).toEqual([]);
  }, 60_000);
});
