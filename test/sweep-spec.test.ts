// Sweep specs as a coordinator writes them: the base run spec and `sweep:` split apart with their
// defaults, trial specs built from values at field paths, and every mistake named by its path.
import { describe, expect, test } from 'vitest';
import { parseSweepSpec, parseSweepSpecText, reachesTarget, SweepSpecError, trialSpec, type SweepSpec } from '../shared/sweep-spec.ts';

/** The issues parseSweepSpec throws for `input` (fails the test when it is valid). */
function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseSweepSpec(input);
  } catch (err) {
    if (err instanceof SweepSpecError) return err.issues;
    throw err;
  }
  throw new Error(`expected a SweepSpecError for ${JSON.stringify(input)}`);
}

const base = { name: 'lr-sweep', dataset: 'mnist', optimizer: { kind: 'adam' }, stop: { maxRounds: 200 } };
const withSweep = (sweep: unknown, b: object = base) => ({ ...b, sweep });

describe('parseSweepSpec', () => {
  test('splits the base from the sweep and fills the defaults', () => {
    const spec = parseSweepSpec(withSweep({ method: 'random', metric: 'loss', parameters: { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } }, maxTrials: 8, earlyTermination: { policy: 'median' } }));
    expect(spec.name).toBe('lr-sweep');
    expect(spec.base).toEqual(base);
    expect(spec.sweep).toEqual({
      method: 'random',
      metric: 'loss',
      goal: 'minimize',
      parameters: { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } },
      maxTrials: 8,
      maxConcurrent: 2,
      seed: 1,
      earlyTermination: { policy: 'median', evaluationInterval: 1, delayEvaluation: 5 },
    });
  });

  test('a grid has every combination as its default maxTrials, and takes choice lists only', () => {
    const grid = parseSweepSpec(withSweep({ method: 'grid', parameters: { 'optimizer.kind': { choice: ['sgd', 'adam', 'adamw'] }, 'model.hidden': { choice: [32, 64] } } }));
    expect(grid.sweep.maxTrials).toBe(6);
    expect(grid.sweep.goal).toBe('maximize');
    expect(issuesOf(withSweep({ method: 'grid', parameters: { 'optimizer.lr': { uniform: [0.001, 0.01] } } }))).toEqual([
      { path: 'sweep.parameters.optimizer.lr', message: 'the grid method takes choice lists only (got uniform): use random or bayesian for ranges' },
    ]);
  });

  test('every swept path must be a field of a run spec, and its bounds or choices valid there', () => {
    const bad = (parameters: object, b: object = base) => issuesOf(withSweep({ method: 'random', parameters }, b));
    expect(bad({ 'optimizer.lrr': { loguniform: [1e-4, 1e-1] } })).toEqual([{ path: 'sweep.parameters.optimizer.lrr', message: expect.stringContaining('unknown field; did you mean "lr"?') }]);
    expect(bad({ 'optimizer.lr': { loguniform: [1e-4, 20] } })).toEqual([{ path: 'sweep.parameters.optimizer.lr', message: 'with optimizer.lr = 20: must be a number greater than 0 and at most 10 (got 20)' }]);
    expect(bad({ 'optimizer.kind': { choice: ['adam', 'lion'] } })[0]).toEqual({ path: 'sweep.parameters.optimizer.kind', message: expect.stringContaining('must be one of sgd, momentum, adam, adamw (got "lion")') });
    // A range on an integer field: samples between the bounds are not integers.
    expect(bad({ batchPerTask: { uniform: [16, 256] } })[0].message).toMatch(/^with batchPerTask = [\d.]+: must be an integer/);
    expect(bad({ 'model.layers.5': { choice: [32] } })).toEqual([{ path: 'sweep.parameters.model.layers.5', message: 'no field model.layers.5: model.layers is a list of 3: it has no element 5' }]);
    expect(bad({ 'name.first': { choice: [1] } })).toEqual([{ path: 'sweep.parameters.name.first', message: 'no field name.first: name is "lr-sweep", not an object or a list' }]);
    expect(bad({ 'model.hidden': { choice: [32] } }, { ...base, model: { layers: [{ kind: 'dense', out: 10 }] } })[0].message).toMatch(/^model.hidden sets the hidden widths of an MLP shorthand/);
    // Several at once, each named.
    expect(bad({ 'optimizer.lrr': { choice: [1] }, 'sync.innerStep': { randint: [1, 8] } }).map((i) => i.path)).toEqual(['sweep.parameters.optimizer.lrr', 'sweep.parameters.sync.innerStep']);
  });

  test('the distributions are checked', () => {
    const bad = (dist: unknown) => issuesOf(withSweep({ method: 'random', parameters: { 'optimizer.lr': dist } }));
    expect(bad({ loguniform: [0, 0.1] })).toEqual([{ path: 'sweep.parameters.optimizer.lr.loguniform', message: 'both bounds must be above 0 (got [0, 0.1])' }]);
    expect(bad({ uniform: [0.1, 0.01] })).toEqual([{ path: 'sweep.parameters.optimizer.lr.uniform', message: 'lo must be below hi (got [0.1, 0.01])' }]);
    expect(bad({ quniform: [0.011, 0.019, 0.01] })).toEqual([{ path: 'sweep.parameters.optimizer.lr.quniform', message: 'no multiple of 0.01 lies in [0.011, 0.019]' }]);
    expect(bad({ randint: [1.5, 4] })[0].message).toBe('bounds must be integers (got [1.5, 4])');
    expect(bad({ choice: [] })[0].path).toBe('sweep.parameters.optimizer.lr.choice');
    expect(bad({ choice: [0.1, 0.1] })[0].message).toBe('lists a value twice (got [0.1,0.1])');
    expect(bad({ normal: [0, 1] })[0].message).toMatch(/^must be one of \{ choice/);
    expect(bad({ uniform: [0.01, 0.1], choice: [1] })[0].path).toBe('sweep.parameters.optimizer.lr');
  });

  test('settings and stopping policies are checked, with the base run spec', () => {
    const lr = { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } };
    expect(issuesOf(withSweep({ method: 'annealing', parameters: lr }))[0]).toEqual({ path: 'sweep.method', message: 'must be one of grid, random, bayesian (got "annealing")' });
    expect(issuesOf(withSweep({ parameters: lr, maxTrials: 0 }))[0].path).toBe('sweep.maxTrials');
    expect(issuesOf(withSweep({ parameters: lr, earlyTermination: { policy: 'bandit' } }))[0]).toEqual({ path: 'sweep.earlyTermination', message: 'the bandit policy takes exactly one of slackFactor and slackAmount' });
    expect(issuesOf(withSweep({ parameters: lr, earlyTermination: { policy: 'bandit', slackFactor: 0.1, slackAmount: 0.05 } }))[0].path).toBe('sweep.earlyTermination');
    expect(issuesOf(withSweep({ parameters: lr, earlyTermination: { policy: 'median', slackFactor: 0.1 } }))[0]).toEqual({ path: 'sweep.earlyTermination.slackFactor', message: 'applies to the bandit policy only, not median' });
    expect(issuesOf(withSweep({ parameters: lr, earlyTermination: { policy: 'truncation', truncationPercentage: 100 } }))[0].path).toBe('sweep.earlyTermination.truncationPercentage');
    expect(issuesOf(withSweep({ parameters: lr, earlyTermination: { policy: 'asha', minResource: 10, maxResource: 10 } }))[0].path).toBe('sweep.earlyTermination.maxResource');
    expect(issuesOf(withSweep({ parameters: {} }))[0].path).toBe('sweep.parameters');
    expect(issuesOf(base)[0].path).toBe('sweep');
    // The base's own mistakes and the sweep's come back together.
    expect(issuesOf(withSweep({ parameters: lr, maxConcurrent: -1 }, { ...base, batchPerTask: 0 })).map((i) => i.path)).toEqual(['batchPerTask', 'sweep.maxConcurrent']);
  });

  test('asha and truncation get their defaults', () => {
    const lr = { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } };
    expect(parseSweepSpec(withSweep({ parameters: lr, earlyTermination: { policy: 'asha' } })).sweep.earlyTermination).toEqual({ policy: 'asha', evaluationInterval: 1, delayEvaluation: 0, reductionFactor: 3, minResource: 1 });
    expect(parseSweepSpec(withSweep({ parameters: lr, earlyTermination: { policy: 'truncation' } })).sweep.earlyTermination).toEqual({ policy: 'truncation', evaluationInterval: 1, delayEvaluation: 0, truncationPercentage: 5 });
  });

  test('reads YAML', () => {
    const spec = parseSweepSpecText(`name: lr-sweep
optimizer: { kind: adam }
sweep:
  method: bayesian
  metric: accuracy
  target: 0.95
  parameters:
    optimizer.lr: { loguniform: [0.0001, 0.1] }
    model.hidden: { choice: [32, 64, 128] }
  maxTrials: 12
  earlyTermination: { policy: bandit, slackFactor: 0.1, delayEvaluation: 2 }
`);
    expect(spec.sweep.parameters['model.hidden']).toEqual({ choice: [32, 64, 128] });
    expect(spec.sweep.earlyTermination).toEqual({ policy: 'bandit', evaluationInterval: 1, delayEvaluation: 2, slackFactor: 0.1 });
    expect(reachesTarget(spec.sweep, 0.95)).toBe(true);
    expect(reachesTarget(spec.sweep, 0.949)).toBe(false);
    expect(() => parseSweepSpecText('sweep: [')).toThrow(SweepSpecError);
  });
});

describe('trialSpec', () => {
  const spec: SweepSpec = parseSweepSpec(withSweep({ method: 'random', parameters: { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } } }, { ...base, model: { layers: [784, 128, 64, 10] } }));

  test('sets each value at its path of the base, names the trial, and leaves the base alone', () => {
    const before = JSON.stringify(spec.base);
    const run = trialSpec(spec, { 'optimizer.lr': 0.003, 'model.hidden': 32, 'sync.innerSteps': 8, 'sync.outer.lr': 0.5, 'optimizer.kind': 'sgd' }, 'lr-sweep-3');
    expect(run.name).toBe('lr-sweep-3');
    expect(run.optimizer).toEqual({ kind: 'sgd', lr: 0.003 });
    expect(run.model).toEqual({ kind: 'mlp', layers: [784, 32, 32, 10], activation: 'relu' });
    expect(run.sync.innerSteps).toBe(8);
    expect(run.sync.outer).toEqual({ lr: 0.5, momentum: 0.9, nesterov: true });
    expect(run.stop).toEqual({ maxRounds: 200 });
    expect(JSON.stringify(spec.base)).toBe(before);
    // Without a name, the base's.
    expect(trialSpec(spec, { 'optimizer.lr': 0.01 }).name).toBe('lr-sweep');
    // A list element by index.
    expect(trialSpec(spec, { 'model.layers.2': 48 }).model).toEqual({ kind: 'mlp', layers: [784, 128, 48, 10], activation: 'relu' });
  });

  test('a bad value is a SweepSpecError naming the field and the values', () => {
    expect(() => trialSpec(spec, { 'optimizer.lr': 11 })).toThrow(new SweepSpecError([{ path: 'optimizer.lr', message: 'with optimizer.lr = 11: must be a number greater than 0 and at most 10 (got 11)' }]));
  });
});
