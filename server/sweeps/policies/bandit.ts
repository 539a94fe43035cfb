// Bandit (HyperDrive's): a trial whose best metric so far is not within a slack of the best
// metric any trial reported up to the same step is stopped. slackFactor is a ratio, slackAmount
// an absolute margin.
import type { StopPolicy } from '../early-termination.ts';
import { bestUpTo, fmt, lastStep, score } from './curves.ts';

export const banditPolicy: StopPolicy = (policy, goal, trial, others) => {
  const step = lastStep(trial.points);
  const own = bestUpTo(goal, trial.points, step)!;
  let best = own;
  for (const o of others) {
    const b = bestUpTo(goal, o.points, step);
    if (b !== null && score(goal, b) > score(goal, best)) best = b;
  }
  const max = goal === 'maximize';
  let threshold: number;
  let slack: string;
  if (policy.slackAmount !== undefined) {
    threshold = max ? best - policy.slackAmount : best + policy.slackAmount;
    slack = `slack amount ${fmt(policy.slackAmount)}`;
  } else {
    const f = policy.slackFactor ?? 0;
    threshold = max ? best / (1 + f) : best * (1 + f);
    slack = `slack factor ${fmt(f)}`;
  }
  if (score(goal, own) >= score(goal, threshold)) return { stop: false };
  return { stop: true, reason: `bandit: best ${fmt(own)} at step ${step} ${max ? 'below' : 'above'} ${fmt(threshold)}, the best trial's ${fmt(best)} with ${slack}` };
};
