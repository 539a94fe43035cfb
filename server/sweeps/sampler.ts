// How a sweep chooses each trial's values: one Sampler per method, registered by name
// (grid, random, bayesian). Pure functions of (settings, index, history): no clock, no store.
// What each method does exactly: docs/sweeps.md.
import type { ParamValue, SweepSettings } from '../../shared/sweep-spec.ts';
import { createGridSampler } from './samplers/grid.ts';
import { createRandomSampler } from './samplers/random.ts';
import { createTpeSampler } from './samplers/tpe.ts';

export interface TrialHistory {
  index: number;
  values: Record<string, ParamValue>;
  /** Best metric so far, null if none yet. */
  metric: number | null;
  state: 'running' | 'completed' | 'stopped' | 'failed';
}

export interface Sampler {
  /**
   * The values of trial `index` (0-based), given what is known of the others; null when the
   * space is exhausted (grid). Deterministic: the same seed, index and history give the same values.
   */
  next(index: number, history: TrialHistory[]): Record<string, ParamValue> | null;
}

const SAMPLERS: Record<SweepSettings['method'], (settings: SweepSettings) => Sampler> = {
  grid: createGridSampler,
  random: createRandomSampler,
  bayesian: createTpeSampler,
};

/** @example createSampler(spec.sweep).next(0, []) // { 'optimizer.lr': 0.0031 } */
export function createSampler(settings: SweepSettings): Sampler {
  return SAMPLERS[settings.method](settings);
}
