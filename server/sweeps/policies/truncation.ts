// Truncation selection (HyperDrive's): at each evaluation, a trial among the worst
// truncationPercentage % of the trials that reached the same step (by best metric so far) is stopped.
import type { StopPolicy } from '../early-termination.ts';
import { bestUpTo, fmt, lastStep, reached, score } from './curves.ts';

export const truncationPolicy: StopPolicy = (policy, goal, trial, others) => {
  const step = lastStep(trial.points);
  const own = bestUpTo(goal, trial.points, step)!;
  const bests = others.filter((o) => reached(o.points, step)).map((o) => bestUpTo(goal, o.points, step)).filter((b): b is number => b !== null);
  const n = bests.length + 1;
  const cut = Math.floor((n * (policy.truncationPercentage ?? 5)) / 100);
  // Ties count in the trial's favour: it is cut only when n - cut trials are strictly better.
  const better = bests.filter((b) => score(goal, b) > score(goal, own)).length;
  if (cut === 0 || better < n - cut) return { stop: false };
  return { stop: true, reason: `truncation: best ${fmt(own)} at step ${step} is among the worst ${policy.truncationPercentage ?? 5}% (${cut} of ${n} trials at this step; ${better} are better)` };
};
