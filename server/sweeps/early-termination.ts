// Early termination: whether a running trial is given up after its latest evaluation, by the
// sweep's policy (median, bandit, truncation, asha), one file each under policies/. Pure:
// the trials' curves in, a decision out; the sweep manager acts on it. Exact rules: docs/sweeps.md.
import type { EarlyTermination, SweepSettings } from '../../shared/sweep-spec.ts';
import { ashaPolicy } from './policies/asha.ts';
import { banditPolicy } from './policies/bandit.ts';
import { medianPolicy } from './policies/median.ts';
import { truncationPolicy } from './policies/truncation.ts';

export interface TrialProgress {
  id: string;
  state: 'running' | 'completed' | 'stopped' | 'failed';
  /** (step, metric) at each evaluation, step = rounds committed. */
  points: { step: number; metric: number }[];
}

export interface StopDecision {
  stop: boolean;
  /** e.g. "median stopping: best 0.81 at step 40 below the median 0.86 of the other trials' running averages" */
  reason?: string;
}

/** One policy: judges `trial` at its latest point against the others (failed ones already left out). */
export type StopPolicy = (policy: EarlyTermination, goal: SweepSettings['goal'], trial: TrialProgress, others: TrialProgress[]) => StopDecision;

const POLICIES: Record<EarlyTermination['policy'], StopPolicy> = {
  median: medianPolicy,
  bandit: banditPolicy,
  truncation: truncationPolicy,
  asha: ashaPolicy,
};

const CONTINUE: StopDecision = { stop: false };

/**
 * Applied each time `trial` reports a new point. The n-th point (n = 1, 2, ...) is judged when
 * n > delayEvaluation and n is a multiple of evaluationInterval (asha: when it crosses a rung).
 * @example evaluateTrial(spec.sweep, { id: 't3', state: 'running', points }, others).stop
 */
export function evaluateTrial(settings: SweepSettings, trial: TrialProgress, others: TrialProgress[]): StopDecision {
  const policy = settings.earlyTermination;
  if (!policy || trial.state !== 'running' || trial.points.length === 0) return CONTINUE;
  if (policy.policy !== 'asha') {
    const n = trial.points.length;
    if (n <= policy.delayEvaluation || n % policy.evaluationInterval !== 0) return CONTINUE;
  }
  const peers = others.filter((o) => o.id !== trial.id && o.state !== 'failed' && o.points.length > 0);
  return POLICIES[policy.policy](policy, settings.goal, trial, peers);
}
