// Samplers: grid covers every combination once, random and bayesian (TPE) stay inside the
// bounds and replay from the seed, and TPE finds the good region of a scripted objective faster
// than random sampling does.
import { describe, expect, test } from 'vitest';
import type { ParamValue, SweepSettings } from '../shared/sweep-spec.ts';
import { createSampler, type TrialHistory } from '../server/sweeps/sampler.ts';
import { TPE_STARTUP_TRIALS } from '../server/sweeps/samplers/tpe.ts';

function settings(method: SweepSettings['method'], parameters: SweepSettings['parameters'], seed = 7, goal: SweepSettings['goal'] = 'minimize'): SweepSettings {
  return { method, metric: goal === 'minimize' ? 'loss' : 'accuracy', goal, parameters, maxTrials: 100, maxConcurrent: 1, seed };
}

const SPACE: SweepSettings['parameters'] = {
  'optimizer.lr': { loguniform: [1e-5, 1] },
  'optimizer.momentum': { uniform: [0, 0.99] },
  batchPerTask: { quniform: [16, 256, 16] },
  'sync.innerSteps': { randint: [1, 9] },
  'optimizer.kind': { choice: ['sgd', 'momentum', 'adam'] },
  'sync.outer.nesterov': { choice: [true, false] },
};

/** Checks one trial's values against SPACE's bounds. */
function expectInside(v: Record<string, ParamValue> | null) {
  expect(v).not.toBeNull();
  const lr = v!['optimizer.lr'] as number;
  expect(lr).toBeGreaterThanOrEqual(1e-5);
  expect(lr).toBeLessThanOrEqual(1);
  const m = v!['optimizer.momentum'] as number;
  expect(m).toBeGreaterThanOrEqual(0);
  expect(m).toBeLessThan(0.99);
  const b = v!.batchPerTask as number;
  expect(b % 16).toBe(0);
  expect(b).toBeGreaterThanOrEqual(16);
  expect(b).toBeLessThanOrEqual(256);
  const h = v!['sync.innerSteps'] as number;
  expect(Number.isInteger(h) && h >= 1 && h < 9).toBe(true);
  expect(['sgd', 'momentum', 'adam']).toContain(v!['optimizer.kind']);
  expect([true, false]).toContain(v!['sync.outer.nesterov']);
  expect(Object.keys(v!)).toEqual(Object.keys(SPACE));
}

/** A scripted objective (a loss): best at lr 10^-2.5, batch 64, adam. */
function objective(v: Record<string, ParamValue>): number {
  const lr = Math.log10(v['optimizer.lr'] as number) + 2.5;
  const b = ((v.batchPerTask as number) - 64) / 128;
  return lr * lr + b * b + (v['optimizer.kind'] === 'adam' ? 0 : 0.5);
}

/** Runs a sweep of n trials one after another on the objective; returns the history. */
function sweep(s: SweepSettings, n: number): TrialHistory[] {
  const sampler = createSampler(s);
  const history: TrialHistory[] = [];
  for (let i = 0; i < n; i++) {
    const values = sampler.next(i, history)!;
    history.push({ index: i, values, metric: objective(values), state: i % 4 === 3 ? 'stopped' : 'completed' });
  }
  return history;
}

describe('grid', () => {
  const s = settings('grid', { 'optimizer.kind': { choice: ['sgd', 'adam', 'adamw'] }, 'optimizer.lr': { choice: [0.1, 0.01] }, 'model.hidden': { choice: [32, 64] } });

  test('covers every combination once, in a fixed order, then is exhausted', () => {
    const sampler = createSampler(s);
    const trials = Array.from({ length: 12 }, (_, i) => sampler.next(i, []));
    const keys = trials.map((t) => JSON.stringify(t));
    expect(new Set(keys).size).toBe(12);
    for (const kind of ['sgd', 'adam', 'adamw']) for (const lr of [0.1, 0.01]) for (const hidden of [32, 64]) expect(keys).toContain(JSON.stringify({ 'optimizer.kind': kind, 'optimizer.lr': lr, 'model.hidden': hidden }));
    // Keys sorted (model.hidden, optimizer.kind, optimizer.lr), the last varying fastest.
    expect(trials.slice(0, 3)).toEqual([
      { 'optimizer.kind': 'sgd', 'optimizer.lr': 0.1, 'model.hidden': 32 },
      { 'optimizer.kind': 'sgd', 'optimizer.lr': 0.01, 'model.hidden': 32 },
      { 'optimizer.kind': 'adam', 'optimizer.lr': 0.1, 'model.hidden': 32 },
    ]);
    expect(sampler.next(12, [])).toBeNull();
    expect(sampler.next(-1, [])).toBeNull();
    // A new sampler (a restarted coordinator) gives trial 7 the same values.
    expect(createSampler(s).next(7, [])).toEqual(trials[7]);
  });

  test('refuses a range', () => {
    expect(() => createSampler(settings('grid', { 'optimizer.lr': { uniform: [0, 1] } }))).toThrow(/choice lists only/);
  });
});

describe('random', () => {
  test('stays inside the bounds, and each distribution has its shape', () => {
    const sampler = createSampler(settings('random', SPACE));
    const trials = Array.from({ length: 600 }, (_, i) => sampler.next(i, []));
    trials.forEach(expectInside);
    // Log-uniform: half below the geometric middle 10^-2.5 (a plain uniform would put ~0.3 % there).
    const below = trials.filter((t) => (t!['optimizer.lr'] as number) < 10 ** -2.5).length / trials.length;
    expect(below).toBeGreaterThan(0.42);
    expect(below).toBeLessThan(0.58);
    // Every integer of randint [1, 9) and every multiple of 16 in [16, 256] comes up.
    expect(new Set(trials.map((t) => t!['sync.innerSteps'])).size).toBe(8);
    expect(new Set(trials.map((t) => t!.batchPerTask)).size).toBe(16);
  });

  test('replays from the seed and the index, whatever the history', () => {
    const a = createSampler(settings('random', SPACE, 7));
    const b = createSampler(settings('random', SPACE, 7));
    const history: TrialHistory[] = [{ index: 0, values: a.next(0, [])!, metric: 0.5, state: 'completed' }];
    expect(b.next(3, history)).toEqual(a.next(3, []));
    expect(a.next(3, [])).not.toEqual(a.next(4, []));
    expect(createSampler(settings('random', SPACE, 8)).next(3, [])).not.toEqual(a.next(3, []));
    // The parameters' order in the spec does not change a trial's values.
    const reversed = Object.fromEntries(Object.entries(SPACE).reverse());
    const r = createSampler(settings('random', reversed, 7)).next(3, [])!;
    for (const k of Object.keys(SPACE)) expect(r[k]).toBe(a.next(3, [])![k]);
  });
});

describe('bayesian (TPE)', () => {
  test('stays inside the bounds with a history to learn from', () => {
    sweep(settings('bayesian', SPACE), 60).forEach((h) => expectInside(h.values));
  });

  test('its first trials are the random ones; then it replays from the seed and the history', () => {
    const bayes = createSampler(settings('bayesian', SPACE));
    const random = createSampler(settings('random', SPACE));
    for (let i = 0; i < TPE_STARTUP_TRIALS; i++) expect(bayes.next(i, [])).toEqual(random.next(i, []));
    const history = sweep(settings('bayesian', SPACE), 20);
    const next = bayes.next(20, history);
    expect(next).not.toEqual(random.next(20, []));
    // A fresh sampler (a restart), the history in another order: the same values.
    expect(createSampler(settings('bayesian', SPACE)).next(20, [...history].reverse())).toEqual(next);
    // Another history, or another seed: other values.
    const changed = history.map((h, i) => (i === 2 ? { ...h, metric: 0 } : h));
    expect(bayes.next(20, changed)).not.toEqual(next);
    expect(createSampler(settings('bayesian', SPACE, 8)).next(20, history)).not.toEqual(next);
    // Running and failed trials, and trials without a metric, teach it nothing.
    const noise: TrialHistory[] = [
      { index: 21, values: history[0].values, metric: -100, state: 'running' },
      { index: 22, values: history[1].values, metric: -100, state: 'failed' },
      { index: 23, values: history[2].values, metric: null, state: 'stopped' },
    ];
    expect(bayes.next(20, [...history, ...noise])).toEqual(next);
  });

  test('concentrates near the optimum of a scripted objective more than random does', () => {
    const distance = (h: TrialHistory) => Math.abs(Math.log10(h.values['optimizer.lr'] as number) + 2.5);
    const late = (hs: TrialHistory[]) => hs.slice(15);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const adam = (hs: TrialHistory[]) => hs.filter((h) => h.values['optimizer.kind'] === 'adam').length;
    let adamTpe = 0;
    let adamRandom = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const tpe = late(sweep(settings('bayesian', SPACE, seed), 40));
      const rnd = late(sweep(settings('random', SPACE, seed), 40));
      // Trials 15..39: learning rates within ~0.6 decades of 10^-2.5 (random: ~1.2) and a lower objective.
      expect(mean(tpe.map(distance))).toBeLessThan(0.6 * mean(rnd.map(distance)));
      expect(mean(tpe.map((h) => h.metric!))).toBeLessThan(0.5 * mean(rnd.map((h) => h.metric!)));
      adamTpe += adam(tpe);
      adamRandom += adam(rnd);
    }
    // More adam overall, though not on every seed: each parameter is modelled on its own, and a
    // choice worth less than the learning rate can settle on the wrong value (docs/sweeps.md).
    expect(adamTpe).toBeGreaterThan(2 * adamRandom);
  });

  test('maximizing: the good group is the highest metrics', () => {
    // The same objective negated as an accuracy to maximize gives the same trials.
    const s = settings('bayesian', SPACE, 3, 'maximize');
    const sampler = createSampler(s);
    const history: TrialHistory[] = [];
    for (let i = 0; i < 20; i++) {
      const values = sampler.next(i, history)!;
      history.push({ index: i, values, metric: -objective(values), state: 'completed' });
    }
    const minimizing = sweep(settings('bayesian', SPACE, 3), 20).map((h) => h.values);
    // sweep() marks every fourth trial stopped; stopped trials count like completed ones.
    expect(history.map((h) => h.values)).toEqual(minimizing);
  });
});
