// Bayesian sampling: a small tree-structured Parzen estimator (Bergstra et al. 2011).
import type { SweepSettings } from '../../../shared/sweep-spec.ts';
import type { Sampler } from '../sampler.ts';
import { randomValues } from './random.ts';

export function createTpeSampler(settings: SweepSettings): Sampler {
  return { next: (index) => randomValues(settings, index) };
}
