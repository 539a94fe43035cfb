// Sweeps on a real coordinator with real CPU workers: trials are stored runs linked to their
// sweep, at most maxConcurrent run at once, a trial below the median is stopped early with its
// reason, a bad spec is refused naming its fields, a sweep survives a coordinator restart without
// repeating a trial, and `crowdtrain sweep` starts one. Trials are tiny MLPs on mnist-10k.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import type { SweepView } from '../shared/rest-types.ts';
import { readSpecText, runSpecToYaml } from '../shared/run-spec-text.ts';
import { parseSweepSpec, trialSpec } from '../shared/sweep-spec.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { createSampler } from '../server/sweeps/sampler.ts';
import { EXIT, main, type CliOutput } from '../server/submit-cli.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const TOKEN = 'sweep-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

/** A trial's base run: 20 short rounds, an evaluation every 2 on 500 test digits. */
const base = {
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 16, 10], activation: 'relu' },
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchPerTask: 32,
  sync: { taskSizing: 'fixed', minWorkers: 1, roundDeadlineMs: 5000 },
  stop: { maxRounds: 20 },
  evalEvery: 2,
  evalExamples: 500,
  checkpointEvery: 4,
};

let coordinators: TestCoordinator[] = [];
let workers: WorkerClient[] = [];

afterEach(async () => {
  for (const w of workers) w.stop();
  workers = [];
  for (const c of coordinators) await c.close().catch(() => {});
  coordinators = [];
});

async function coordinator(storePath?: string): Promise<TestCoordinator> {
  const c = await startCoordinator({ adminToken: TOKEN, defaultRun: false, evaluation: 'inline', ...(storePath ? { store: new SqliteStore(storePath) } : {}) });
  coordinators.push(c);
  return c;
}

/**
 * `n` CPU workers. No trial is given workers by hand: the scheduler moves a worker off a trial
 * that ended to a running one, which is how an ended trial frees its workers for the next.
 */
function startWorkers(c: TestCoordinator, n: number): void {
  for (let i = 0; i < n; i++) workers.push(startCpuWorker(c.url));
}

async function post(c: TestCoordinator, body: unknown, headers: Record<string, string> = { ...auth, 'content-type': 'application/json' }): Promise<{ status: number; body: any }> {
  const res = await fetch(`${c.url}/api/sweeps`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function getSweep(c: TestCoordinator, id: string): Promise<SweepView> {
  const res = await fetch(`${c.url}/api/sweeps/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SweepView;
}

/** Polls the sweep until it ends; `each` sees every view on the way. */
async function untilEnded(c: TestCoordinator, id: string, ms: number, each: (v: SweepView) => void = () => {}): Promise<SweepView> {
  let view = await getSweep(c, id);
  const end = Date.now() + ms;
  while (view.state === 'running') {
    if (Date.now() > end) throw new Error(`sweep still running after ${ms} ms: ${JSON.stringify(view.trials)}`);
    each(view);
    await new Promise((r) => setTimeout(r, 100));
    view = await getSweep(c, id);
  }
  each(view);
  return view;
}

/** A trial's best accuracy, as its own run's stored metric points say. */
function bestAccuracy(c: TestCoordinator, runId: string): number | null {
  const accs = c.app.crowdtrain.store.metrics(runId).map((p) => p.accuracy).filter((a): a is number => a !== null);
  return accs.length ? Math.max(...accs) : null;
}

describe('sweeps', () => {
  test('a 3-trial random sweep: at most maxConcurrent at once, every trial a stored run of the sweep, best as the runs record it', async () => {
    const c = await coordinator();
    const created = await post(c, {
      ...base,
      name: 'lr-random',
      sweep: { method: 'random', metric: 'accuracy', goal: 'maximize', parameters: { 'optimizer.lr': { loguniform: [0.01, 0.5] } }, maxTrials: 3, maxConcurrent: 2, seed: 7 },
    });
    expect(created.status).toBe(201);
    const id = created.body.sweep.id as string;
    expect(created.body.sweep.trials).toHaveLength(2);
    startWorkers(c, 2);

    let mostRunning = 0;
    const view = await untilEnded(c, id, 120_000, (v) => {
      mostRunning = Math.max(mostRunning, v.trials.filter((t) => t.state === 'running').length);
      const runningRuns = [...c.app.crowdtrain.scheduler.runs.values()].filter((r) => r.state === 'running').length;
      mostRunning = Math.max(mostRunning, runningRuns);
    });
    expect(mostRunning).toBe(2);
    expect(view.state).toBe('completed');
    expect(view.trials.map((t) => t.index)).toEqual([0, 1, 2]);

    const { store } = c.app.crowdtrain;
    for (const t of view.trials) {
      const rec = store.getRun(t.runId)!;
      expect(rec.name).toBe(`lr-random-t${t.index}`);
      expect(rec.spec.optimizer.lr).toBe(t.values['optimizer.lr']);
      expect(rec.state).toBe('completed');
      expect(t.state).toBe('completed');
      expect(t.stoppedReason).toBe(rec.stopReason);
      expect(t.metric).toBe(bestAccuracy(c, t.runId));
      // The third trial trained too: workers left the trials that ended for it.
      expect(store.workers(t.runId).length).toBeGreaterThan(0);
    }
    const lrs = view.trials.map((t) => t.values['optimizer.lr'] as number);
    expect(new Set(lrs).size).toBe(3);
    for (const lr of lrs) expect(lr >= 0.01 && lr <= 0.5).toBe(true);
    const bestRecorded = view.trials.map((t) => ({ index: t.index, acc: bestAccuracy(c, t.runId)! })).sort((a, b) => b.acc - a.acc)[0];
    expect(view.best).toEqual({ index: bestRecorded.index, runId: view.trials[bestRecorded.index].runId, metric: bestRecorded.acc });
    // GET /api/sweeps lists it, with the same best.
    const list = (await (await fetch(`${c.url}/api/sweeps`)).json()) as { sweeps: SweepView[] };
    expect(list.sweeps.map((s) => [s.id, s.best?.index])).toEqual([[id, bestRecorded.index]]);
  }, 150_000);

  test('median stopping: a trial whose learning rate is far too small is stopped early, with the policy as its reason', async () => {
    const c = await coordinator();
    const created = await post(c, {
      ...base,
      name: 'lr-median',
      // One at a time, so that the third trial is judged against the two finished ones.
      sweep: { method: 'grid', metric: 'accuracy', parameters: { 'optimizer.lr': { choice: [0.2, 0.1, 0.00001] } }, maxConcurrent: 1, earlyTermination: { policy: 'median', evaluationInterval: 1, delayEvaluation: 1 } },
    });
    expect(created.status).toBe(201);
    startWorkers(c, 2);
    const view = await untilEnded(c, created.body.sweep.id, 120_000);
    expect(view.trials).toHaveLength(3);
    expect(view.trials[0].state).toBe('completed'); // judged against no one
    const slow = view.trials[2];
    expect(slow.values['optimizer.lr']).toBe(0.00001);
    expect(slow.state).toBe('stopped');
    expect(slow.stoppedReason).toMatch(/^stopped early: median stopping: best .* below the median/);
    const rec = c.app.crowdtrain.store.getRun(slow.runId)!;
    expect(rec.state).toBe('stopped');
    expect(rec.stopReason).toBe(slow.stoppedReason);
    expect(rec.version).toBeLessThan(20);
    expect(view.best?.index).not.toBe(2);
  }, 150_000);

  test('a bad sweep spec is refused with 400 naming each bad field; no admin credential: 401; nothing is created', async () => {
    const c = await coordinator();
    const bad = await post(c, { ...base, name: 'bad', optimizer: { kind: 'sgd', lr: -1 }, sweep: { method: 'annealing', parameters: { 'optimizer.lr': { loguniform: [0, 1] } }, maxConcurrent: 0 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_spec');
    const paths = (bad.body.issues as { path: string }[]).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['optimizer.lr', 'sweep.method', 'sweep.parameters.optimizer.lr.loguniform', 'sweep.maxConcurrent']));
    const yaml = await post(c, 'name: y\nsweep:\n  parameters: {}\n', { ...auth, 'content-type': 'application/yaml' });
    expect(yaml.status).toBe(400);
    expect((yaml.body.issues as { path: string }[]).map((i) => i.path)).toContain('sweep.parameters');
    const syntax = await post(c, 'name: [unclosed', { ...auth, 'content-type': 'application/yaml' });
    expect(syntax.status).toBe(400);
    expect(syntax.body.issues[0].path).toBe('(yaml)');
    const noAuth = await post(c, { ...base, sweep: { parameters: { 'optimizer.lr': { choice: [0.1] } } } }, { 'content-type': 'application/json' });
    expect(noAuth.status).toBe(401);
    expect((await (await fetch(`${c.url}/api/sweeps`)).json()).sweeps).toEqual([]);
    expect(c.app.crowdtrain.scheduler.runs.size).toBe(0);
    expect((await fetch(`${c.url}/api/sweeps/nope`)).status).toBe(404);
  });

  test('after a coordinator restart on the same store the sweep continues at the next index, repeats no trial, and ends', async () => {
    const storePath = join(mkdtempSync(join(tmpdir(), 'crowdtrain-sweep-restart-')), 'crowdtrain.db');
    const first = await coordinator(storePath);
    const created = await post(first, {
      ...base,
      name: 'lr-restart',
      sweep: { method: 'random', parameters: { 'optimizer.lr': { loguniform: [0.01, 0.5] } }, maxTrials: 3, maxConcurrent: 1, seed: 3 },
    });
    expect(created.status).toBe(201);
    const id = created.body.sweep.id as string;
    startWorkers(first, 2);
    // Stop once the second trial has a checkpoint: mid-sweep, mid-trial.
    await waitFor(() => {
      const t1 = first.app.crowdtrain.store.trials(id)[1];
      return t1 !== undefined && (first.app.crowdtrain.store.latestCheckpoint(t1.runId)?.version ?? 0) >= 4;
    }, 90_000, 'the second trial to checkpoint');
    for (const w of workers) w.stop();
    workers = [];
    const before = await getSweep(first, id);
    await first.close();
    coordinators = coordinators.filter((c) => c !== first);
    expect(before.trials.map((t) => t.state)).toEqual(['completed', 'running']);

    const second = await coordinator(storePath);
    const restored = await getSweep(second, id);
    expect(restored.state).toBe('running');
    expect(restored.trials.map((t) => [t.index, t.runId, t.values])).toEqual(before.trials.map((t) => [t.index, t.runId, t.values]));
    const run1 = second.app.crowdtrain.scheduler.runs.get(before.trials[1].runId)!;
    expect(run1.state).toBe('running');
    expect(run1.version).toBeGreaterThanOrEqual(4); // from its checkpoint, not from round 0
    startWorkers(second, 2);
    const view = await untilEnded(second, id, 120_000);
    expect(view.state).toBe('completed');
    expect(view.trials.map((t) => t.index)).toEqual([0, 1, 2]);
    expect(view.trials.map((t) => t.runId).slice(0, 2)).toEqual(before.trials.map((t) => t.runId));
    expect(view.trials[2].runId).not.toBe('');
    expect(second.app.crowdtrain.store.getRun(view.trials[2].runId)?.name).toBe('lr-restart-t2');
    const lrs = view.trials.map((t) => t.values['optimizer.lr']);
    expect(new Set(lrs).size).toBe(3);
    // The third trial is the one the same seed draws at index 2: the sampler went on, it did not start over.
    const spec = parseSweepSpec({ ...base, name: 'lr-restart', sweep: created.body.sweep.spec.sweep });
    const history = view.trials.slice(0, 2).map((t) => ({ index: t.index, values: t.values, metric: t.metric, state: t.state }));
    expect(view.trials[2].values).toEqual(createSampler(spec.sweep).next(2, history));
    expect(view.trials.every((t) => t.state === 'completed')).toBe(true);
  }, 240_000);

  test('crowdtrain sweep FILE submits a sweep; a bad file is refused before it leaves the machine', async () => {
    const c = await coordinator();
    const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-sweep-cli-'));
    const good = join(dir, 'sweep.yaml');
    writeFileSync(good, `${runSpecToYaml({ ...base, name: 'cli-sweep' } as never)}sweep:\n  method: grid\n  parameters:\n    optimizer.lr: { choice: [0.1, 0.05] }\n  maxConcurrent: 1\n`);
    const out: string[] = [];
    const err: string[] = [];
    const io: CliOutput = { out: (t) => void out.push(t), err: (t) => void err.push(t) };
    const code = await main(['sweep', good, '--server', c.url, '--token', TOKEN], {}, fetch, io);
    expect(err.join('\n')).toMatch(/started sweep "cli-sweep"/);
    expect(code).toBe(EXIT.ok);
    const list = (await (await fetch(`${c.url}/api/sweeps`)).json()) as { sweeps: SweepView[] };
    expect(list.sweeps).toHaveLength(1);
    expect(out.join('\n')).toBe(`${c.url}/api/sweeps/${list.sweeps[0].id}`);
    expect(list.sweeps[0].trials.map((t) => t.values)).toEqual([{ 'optimizer.lr': 0.1 }]);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: b\nsweep:\n  method: annealing\n  parameters:\n    optimizer.lr: { choice: [0.1] }\n');
    const out2: string[] = [];
    const err2: string[] = [];
    const code2 = await main(['sweep', bad, '--server', c.url, '--token', TOKEN], {}, fetch, { out: (t) => void out2.push(t), err: (t) => void err2.push(t) });
    expect(code2).toBe(EXIT.usage);
    expect(err2.join('\n')).toMatch(/not a valid sweep spec[\s\S]*sweep\.method: must be one of grid, random, bayesian/);
    expect(((await (await fetch(`${c.url}/api/sweeps`)).json()) as { sweeps: SweepView[] }).sweeps).toHaveLength(1);
  });

  test.each(readdirSync(join(import.meta.dirname, '..', 'examples')).filter((f) => f.endsWith('-sweep.yaml')))('examples/%s validates and starts its first trials on a coordinator', async (file) => {
    const text = readFileSync(join(import.meta.dirname, '..', 'examples', file), 'utf8');
    const spec = parseSweepSpec(readSpecText(text));
    expect(spec.name).toBe(file.replace(/\.yaml$/, ''));
    expect(spec.sweep.earlyTermination?.policy).toBeDefined();
    // Comments explain the fields: the examples are documentation.
    expect(text.split('\n').filter((l) => l.includes('#')).length).toBeGreaterThan(5);
    const c = await coordinator();
    const created = await post(c, text, { ...auth, 'content-type': 'application/yaml' });
    expect(created.status).toBe(201);
    const view = created.body.sweep as SweepView;
    expect(view.trials).toHaveLength(spec.sweep.maxConcurrent);
    for (const t of view.trials) {
      const run = c.app.crowdtrain.scheduler.runs.get(t.runId)!;
      expect(run.name).toBe(`${spec.name}-t${t.index}`);
      expect(run.spec).toEqual(trialSpec(spec, t.values, run.name));
    }
    // Stopped by the admin: its running trials stop with the reason, and it cannot be stopped twice.
    const stop = (id: string, headers: Record<string, string> = auth) => fetch(`${c.url}/api/sweeps/${id}/stop`, { method: 'POST', headers });
    expect((await stop(view.id, {})).status).toBe(401);
    const stopped = (await (await stop(view.id)).json()).sweep as SweepView;
    expect(stopped.state).toBe('stopped');
    expect(stopped.trials.map((t) => [t.state, t.stoppedReason])).toEqual(view.trials.map(() => ['stopped', 'the sweep ended: stopped by the admin']));
    for (const t of view.trials) expect(c.app.crowdtrain.store.getRun(t.runId)?.state).toBe('stopped');
    expect((await stop(view.id)).status).toBe(409);
    expect((await stop('nope')).status).toBe(404);
  });
});
