// ASHA (asynchronous successive halving, Li et al. 2020), stopping form: rungs at steps
// minResource·η^k; a trial crossing rung k goes on only when it is in the top 1/η (at least the
// best one) of the trials that reached rung k so far, itself included; else it is stopped.
import type { StopPolicy, TrialProgress } from '../early-termination.ts';
import { bestUpTo, fmt, lastStep, score } from './curves.ts';

/** The rungs' steps up to `upTo` (and below maxResource). */
export function rungs(minResource: number, eta: number, maxResource: number | undefined, upTo: number): number[] {
  const out: number[] = [];
  for (let r = minResource; r <= upTo && (maxResource === undefined || r < maxResource); r *= eta) out.push(r);
  return out;
}

/** The trial's metric at a rung: its best up to its first point at or past the rung (null: not reached). */
function atRung(goal: 'maximize' | 'minimize', points: TrialProgress['points'], rung: number): number | null {
  const first = points.find((p) => p.step >= rung);
  return first ? bestUpTo(goal, points, first.step) : null;
}

export const ashaPolicy: StopPolicy = (policy, goal, trial, others) => {
  const eta = policy.reductionFactor ?? 3;
  const pts = trial.points;
  const step = lastStep(pts);
  const previous = pts.length >= 2 ? pts[pts.length - 2].step : 0;
  const crossed = rungs(policy.minResource ?? 1, eta, policy.maxResource, step).filter((r) => r > previous);
  for (const rung of crossed) {
    const own = bestUpTo(goal, pts, step)!;
    const values = others.map((o) => atRung(goal, o.points, rung)).filter((v): v is number => v !== null);
    const n = values.length + 1;
    const top = Math.max(1, Math.floor(n / eta));
    const better = values.filter((v) => score(goal, v) > score(goal, own)).length;
    if (better >= top) {
      const k = Math.round(Math.log(rung / (policy.minResource ?? 1)) / Math.log(eta));
      return { stop: true, reason: `asha: best ${fmt(own)} at rung ${k} (step ${rung}) is not in the top 1/${eta}: ${better} of the ${n} trials that reached it are better, ${top} go on` };
    }
  }
  return { stop: false };
};
