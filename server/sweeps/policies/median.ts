// Median stopping (HyperDrive's, after Google Vizier): a trial whose best metric so far is worse
// than the median of the other trials' running averages at the same step is stopped.
import type { StopPolicy } from '../early-termination.ts';
import { bestUpTo, fmt, lastStep, median, reached, runningAverage, score } from './curves.ts';

export const medianPolicy: StopPolicy = (_policy, goal, trial, others) => {
  const step = lastStep(trial.points);
  const best = bestUpTo(goal, trial.points, step)!;
  // Only trials that have got as far: an average over a shorter curve is not one "at this step".
  const averages = others.filter((o) => reached(o.points, step)).map((o) => runningAverage(o.points, step)).filter((a): a is number => a !== null);
  if (averages.length === 0) return { stop: false };
  const m = median(averages);
  if (score(goal, best) >= score(goal, m)) return { stop: false };
  const side = goal === 'maximize' ? 'below' : 'above';
  return { stop: true, reason: `median stopping: best ${fmt(best)} at step ${step} ${side} the median ${fmt(m)} of the other trials' running averages (${averages.length} trials)` };
};
