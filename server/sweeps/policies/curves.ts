// What the stopping policies read from a trial's curve: its best and running average up to a
// step, with the metric turned into a score where higher is better whatever the goal.
import type { SweepSettings } from '../../../shared/sweep-spec.ts';
import type { TrialProgress } from '../early-termination.ts';

type Goal = SweepSettings['goal'];
type Points = TrialProgress['points'];

/** Higher is better: the metric itself when maximizing, its negation when minimizing. */
export const score = (goal: Goal, metric: number): number => (goal === 'maximize' ? metric : -metric);

/** The step of the trial's latest point. */
export const lastStep = (points: Points): number => points[points.length - 1].step;

/** True when the trial has a point at or past `step`. */
export const reached = (points: Points, step: number): boolean => points.some((p) => p.step >= step);

/** Best metric among the points at or before `step` (null when there is none). */
export function bestUpTo(goal: Goal, points: Points, step: number): number | null {
  let best: number | null = null;
  for (const p of points) if (p.step <= step && (best === null || score(goal, p.metric) > score(goal, best))) best = p.metric;
  return best;
}

/** Mean of the metric over the points at or before `step` (null when there is none). */
export function runningAverage(points: Points, step: number): number | null {
  let sum = 0;
  let n = 0;
  for (const p of points) {
    if (p.step <= step) {
      sum += p.metric;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A metric in a reason: four significant digits. */
export const fmt = (x: number): string => String(Number(x.toPrecision(4)));
