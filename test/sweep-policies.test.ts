// Early termination with scripted metric curves: trials report in a fixed order (the injected
// clock is the script's order), each report is judged by evaluateTrial against the others' curves
// so far, and the expected stops are worked out by hand from each policy's rule (docs/sweeps.md).
import { describe, expect, test } from 'vitest';
import type { EarlyTermination, SweepSettings } from '../shared/sweep-spec.ts';
import { evaluateTrial, type TrialProgress } from '../server/sweeps/early-termination.ts';

function settingsWith(earlyTermination: EarlyTermination | undefined, goal: SweepSettings['goal'] = 'maximize'): SweepSettings {
  return {
    method: 'random',
    metric: goal === 'maximize' ? 'accuracy' : 'loss',
    goal,
    parameters: { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } },
    maxTrials: 10,
    maxConcurrent: 5,
    seed: 1,
    ...(earlyTermination ? { earlyTermination } : {}),
  };
}

interface Stop {
  step: number;
  reason: string;
}

/**
 * Plays scripted curves: trial `id` reports curves[id][i] at step (i + 1)·stepEvery. 'lockstep':
 * at each step every running trial reports, in key order; 'sequential': each trial runs its whole
 * curve before the next starts. A stopped trial reports no more; a finished one is 'completed'.
 * Returns where each trial was stopped (null: never).
 */
function play(settings: SweepSettings, curves: Record<string, number[]>, order: 'lockstep' | 'sequential', stepEvery = 10): Record<string, Stop | null> {
  const trials: TrialProgress[] = Object.keys(curves).map((id) => ({ id, state: 'running', points: [] }));
  const stops: Record<string, Stop | null> = Object.fromEntries(Object.keys(curves).map((id) => [id, null]));
  const report = (t: TrialProgress, i: number) => {
    if (t.state !== 'running') return;
    t.points.push({ step: (i + 1) * stepEvery, metric: curves[t.id][i] });
    const d = evaluateTrial(settings, t, trials.filter((o) => o !== t));
    if (d.stop) {
      t.state = 'stopped';
      stops[t.id] = { step: (i + 1) * stepEvery, reason: d.reason ?? '' };
    } else if (i === curves[t.id].length - 1) t.state = 'completed';
  };
  const longest = Math.max(...Object.values(curves).map((c) => c.length));
  if (order === 'lockstep') {
    for (let i = 0; i < longest; i++) for (const t of trials) if (i < curves[t.id].length) report(t, i);
  } else {
    for (const t of trials) for (let i = 0; i < curves[t.id].length; i++) report(t, i);
  }
  return stops;
}

const stepsOf = (stops: Record<string, Stop | null>) => Object.fromEntries(Object.entries(stops).map(([id, s]) => [id, s?.step ?? null]));

const lossOf = (curves: Record<string, number[]>) => Object.fromEntries(Object.entries(curves).map(([id, c]) => [id, c.map((m) => 1 - m)]));

describe('median stopping', () => {
  // B starts slowly and ends best; C and D stay below the pack; E is close to A.
  const curves = {
    A: [0.5, 0.6, 0.7, 0.8],
    B: [0.1, 0.15, 0.65, 0.9],
    C: [0.4, 0.45, 0.5, 0.52],
    D: [0.3, 0.35, 0.4, 0.45],
    E: [0.45, 0.55, 0.61, 0.62],
  };
  const median = (delayEvaluation: number, evaluationInterval = 1): EarlyTermination => ({ policy: 'median', evaluationInterval, delayEvaluation });

  test('after a delay of 2 evaluations: D at step 30 and C at step 40, and the slow starter B is spared', () => {
    // Step 30: D's best 0.4 < median(A 0.6, B 0.3, C 0.45) = 0.45. Step 40: C's best 0.52 <
    // median(A 0.65, B 0.45) = 0.55; E's 0.62 > median(A 0.65, B 0.45, C 0.4675) (D never reached 40).
    const stops = play(settingsWith(median(2)), curves, 'lockstep');
    expect(stepsOf(stops)).toEqual({ A: null, B: null, C: 40, D: 30, E: null });
    expect(stops.D!.reason).toBe("median stopping: best 0.4 at step 30 below the median 0.45 of the other trials' running averages (3 trials)");
    expect(stops.C!.reason).toBe("median stopping: best 0.52 at step 40 below the median 0.55 of the other trials' running averages (2 trials)");
  });

  test('without a delay B and D go at the first evaluation, C at step 20, E at step 40', () => {
    // Step 10: B 0.1 < A 0.5; D 0.3 < median(0.5, 0.1, 0.4) = 0.4. Step 20: C 0.45 < A's 0.55
    // (B and D stopped before 20: not counted). Step 30: E 0.61 > A's 0.6. Step 40: E 0.62 < A's 0.65.
    expect(stepsOf(play(settingsWith(median(0)), curves, 'lockstep'))).toEqual({ A: null, B: 10, C: 20, D: 10, E: 40 });
  });

  test('an evaluation interval of 2 judges only every second point', () => {
    // Step 20: B 0.15 < A 0.55; D 0.35 < median(0.55, 0.125, 0.425) = 0.425. Step 30 unjudged.
    // Step 40: C 0.52 < A's 0.65 (E reports after C); E 0.62 > median(0.65, 0.4675).
    expect(stepsOf(play(settingsWith(median(0, 2)), curves, 'lockstep'))).toEqual({ A: null, B: 20, C: 40, D: 20, E: null });
  });

  test('minimizing a loss stops the same trials', () => {
    const stops = play(settingsWith(median(2), 'minimize'), lossOf(curves), 'lockstep');
    expect(stepsOf(stops)).toEqual({ A: null, B: null, C: 40, D: 30, E: null });
    expect(stops.D!.reason).toBe("median stopping: best 0.6 at step 30 above the median 0.55 of the other trials' running averages (3 trials)");
  });

  test('a trial at the median goes on; failed trials and the trial itself are not counted', () => {
    const s = settingsWith(median(0));
    const t: TrialProgress = { id: 't', state: 'running', points: [{ step: 10, metric: 0.5 }] };
    const at = (id: string, metric: number, state: TrialProgress['state'] = 'running'): TrialProgress => ({ id, state, points: [{ step: 10, metric }] });
    expect(evaluateTrial(s, t, [at('a', 0.5)]).stop).toBe(false);
    expect(evaluateTrial(s, t, [at('a', 0.51)]).stop).toBe(true);
    expect(evaluateTrial(s, t, [at('a', 0.9, 'failed')]).stop).toBe(false);
    expect(evaluateTrial(s, t, [{ ...t, points: [{ step: 10, metric: 0.9 }] }]).stop).toBe(false);
    // Not judged at all: a stopped trial, or a sweep without a policy.
    expect(evaluateTrial(s, { ...t, state: 'stopped' }, [at('a', 0.9)]).stop).toBe(false);
    expect(evaluateTrial(settingsWith(undefined), t, [at('a', 0.9)]).stop).toBe(false);
  });
});

describe('bandit', () => {
  const curves = {
    A: [0.5, 0.7, 0.8],
    B: [0.45, 0.66, 0.71],
    C: [0.4, 0.6, 0.74],
  };

  test('slack factor 0.1: stops a trial below best / 1.1 at the same step', () => {
    // Step 10: the best is A's 0.5, the threshold 0.5 / 1.1 = 0.4545: B (0.45) and C (0.4) are below.
    const policy: EarlyTermination = { policy: 'bandit', evaluationInterval: 1, delayEvaluation: 0, slackFactor: 0.1 };
    const stops = play(settingsWith(policy), curves, 'lockstep');
    expect(stepsOf(stops)).toEqual({ A: null, B: 10, C: 10 });
    expect(stops.B!.reason).toBe("bandit: best 0.45 at step 10 below 0.4545, the best trial's 0.5 with slack factor 0.1");
  });

  test('slack factor 0.1 after a delay of 1: B (0.66 > 0.7/1.1 = 0.636) goes on, C (0.6) stops at step 20; at 30 B 0.71 < 0.8/1.1 = 0.727', () => {
    const policy: EarlyTermination = { policy: 'bandit', evaluationInterval: 1, delayEvaluation: 1, slackFactor: 0.1 };
    expect(stepsOf(play(settingsWith(policy), curves, 'lockstep'))).toEqual({ A: null, B: 30, C: 20 });
  });

  test('slack amount 0.07: C (0.6 < 0.7 - 0.07) at step 20, B (0.71 < 0.8 - 0.07) at step 30', () => {
    const policy: EarlyTermination = { policy: 'bandit', evaluationInterval: 1, delayEvaluation: 1, slackAmount: 0.07 };
    const stops = play(settingsWith(policy), curves, 'lockstep');
    expect(stepsOf(stops)).toEqual({ A: null, B: 30, C: 20 });
    expect(stops.C!.reason).toBe("bandit: best 0.6 at step 20 below 0.63, the best trial's 0.7 with slack amount 0.07");
  });

  test('minimizing: the threshold is best · (1 + factor) and best + amount', () => {
    const factor = settingsWith({ policy: 'bandit', evaluationInterval: 1, delayEvaluation: 0, slackFactor: 0.1 }, 'minimize');
    const amount = settingsWith({ policy: 'bandit', evaluationInterval: 1, delayEvaluation: 0, slackAmount: 0.05 }, 'minimize');
    const best: TrialProgress = { id: 'best', state: 'running', points: [{ step: 10, metric: 0.2 }] };
    const loss = (m: number): TrialProgress => ({ id: 't', state: 'running', points: [{ step: 10, metric: m }] });
    expect(evaluateTrial(factor, loss(0.219), [best]).stop).toBe(false);
    expect(evaluateTrial(factor, loss(0.221), [best]).stop).toBe(true);
    expect(evaluateTrial(amount, loss(0.249), [best]).stop).toBe(false);
    expect(evaluateTrial(amount, loss(0.251), [best]).stop).toBe(true);
  });

  test('the best trial is judged at the same step: a later, better point of another trial does not count', () => {
    const s = settingsWith({ policy: 'bandit', evaluationInterval: 1, delayEvaluation: 0, slackFactor: 0.1 });
    const t: TrialProgress = { id: 't', state: 'running', points: [{ step: 10, metric: 0.5 }] };
    const other: TrialProgress = { id: 'o', state: 'running', points: [{ step: 10, metric: 0.52 }, { step: 20, metric: 0.9 }] };
    expect(evaluateTrial(s, t, [other]).stop).toBe(false);
    expect(evaluateTrial(s, { ...t, points: [...t.points, { step: 20, metric: 0.55 }] }, [other]).stop).toBe(true);
  });
});

describe('truncation', () => {
  const policy = (truncationPercentage: number, delayEvaluation = 0): EarlyTermination => ({ policy: 'truncation', evaluationInterval: 1, delayEvaluation, truncationPercentage });

  test('20 % of 5 trials at a step: the single worst, judged when it reports among the other four', () => {
    // Lockstep A..E: only the fifth report of a step sees 5 trials (cut 1); earlier reports see
    // fewer (cut 0). E is worst at step 10: stopped. At step 20 only 4 trials reach the step
    // (cut 0), so B, now worst, goes on.
    const curves = {
      A: [0.5, 0.6],
      B: [0.45, 0.3],
      C: [0.4, 0.5],
      D: [0.42, 0.55],
      E: [0.35, 0.9],
    };
    const stops = play(settingsWith(policy(20)), curves, 'lockstep');
    expect(stepsOf(stops)).toEqual({ A: null, B: null, C: null, D: null, E: 10 });
    expect(stops.E!.reason).toBe('truncation: best 0.35 at step 10 is among the worst 20% (1 of 5 trials at this step; 4 are better)');
  });

  test('sequential trials: 30 % of those at the same step, by best so far', () => {
    // Each trial runs to the end before the next and is compared, at each of its steps, with the
    // earlier trials that reached that step, by their best up to it.
    const curves = {
      A: [0.5, 0.6, 0.7],
      B: [0.45, 0.55, 0.65],
      C: [0.4, 0.6, 0.8],
      D: [0.42, 0.58, 0.75],
      E: [0.3, 0.5, 0.78],
      F: [0.35, 0.45, 0.9],
    };
    // 30 %: cut 0 below 4 trials. D (4 trials, cut 1) is never worst. E@10: worst of 5 (cut 1).
    // F@10: E is worse (6 trials, cut 1). F@20: worst of A..D and itself (E stopped before 20).
    expect(stepsOf(play(settingsWith(policy(30)), curves, 'sequential'))).toEqual({ A: null, B: null, C: null, D: null, E: 10, F: 20 });
    // 40 %: C@10 is worst of 3 (cut 1); E@10 is worst of 5 (cut 2); F@10 has A..D better, 4 of 6 (cut 2).
    expect(stepsOf(play(settingsWith(policy(40)), curves, 'sequential'))).toEqual({ A: null, B: null, C: 10, D: null, E: 10, F: 10 });
    // A delay of 2 evaluations: only step 30 is judged, where C, E and F each have at most one better.
    expect(stepsOf(play(settingsWith(policy(40, 2)), curves, 'sequential'))).toEqual({ A: null, B: null, C: null, D: null, E: null, F: null });
  });

  test('ties count in the trial\'s favour', () => {
    const s = settingsWith(policy(20));
    const at = (id: string, metric: number): TrialProgress => ({ id, state: 'running', points: [{ step: 10, metric }] });
    expect(evaluateTrial(s, at('t', 0.3), [at('a', 0.3), at('b', 0.5), at('c', 0.6), at('d', 0.7)]).stop).toBe(false);
    expect(evaluateTrial(s, at('t', 0.29), [at('a', 0.3), at('b', 0.5), at('c', 0.6), at('d', 0.7)]).stop).toBe(true);
  });
});

describe('ASHA', () => {
  // η = 2, rungs at steps 10, 20, 40, 80; trials one after another (maxConcurrent 1).
  const curves = {
    A: [0.5, 0.6, 0.65, 0.7],
    B: [0.6, 0.62, 0.7, 0.8],
    C: [0.55, 0.58, 0.6, 0.6],
    D: [0.65, 0.61, 0.63, 0.9],
    E: [0.52, 0.7, 0.75, 0.8],
    F: [0.62, 0.61, 0.6, 0.5],
  };
  const asha = (maxResource?: number): EarlyTermination => ({ policy: 'asha', evaluationInterval: 1, delayEvaluation: 0, reductionFactor: 2, minResource: 10, ...(maxResource ? { maxResource } : {}) });

  test('a trial goes past a rung only in the top half of those that reached it', () => {
    // Rung 10: A alone (top 1); B beats A; C is 2nd of 3 (top 1): stopped; D best of 4 (top 2);
    // E 4th of 5 (top 2): stopped; F 2nd of 6 (top 3). Rung 20: B beats A; D (0.65 so far) best of
    // A, B, D; F 0.62 ties B, only D better, 2nd of 4 (top 2). Rung 40: F 4th of A, B, D, F: stopped.
    const stops = play(settingsWith(asha()), curves, 'sequential');
    expect(stepsOf(stops)).toEqual({ A: null, B: null, C: 10, D: null, E: 10, F: 40 });
    expect(stops.C!.reason).toBe('asha: best 0.55 at rung 0 (step 10) is not in the top 1/2: 1 of the 3 trials that reached it are better, 1 go on');
    expect(stops.F!.reason).toBe('asha: best 0.62 at rung 2 (step 40) is not in the top 1/2: 3 of the 4 trials that reached it are better, 2 go on');
  });

  test('no rung at or past maxResource, and no judgement between rungs', () => {
    expect(stepsOf(play(settingsWith(asha(40)), curves, 'sequential'))).toEqual({ A: null, B: null, C: 10, D: null, E: 10, F: null });
  });

  test('a point that crosses two rungs is judged at each', () => {
    // Evaluations every 30 steps cross rungs 10 and 20 at step 30. At rung 10 the earlier trials
    // (reporting every 10) give 0.5, 0.6, 0.55, 0.65; at rung 20 A 0.6, B 0.62, D 0.65.
    const s = settingsWith(asha());
    const others: TrialProgress[] = ['A', 'B', 'C', 'D'].map((id) => ({ id, state: 'completed', points: (curves as Record<string, number[]>)[id].map((metric, i) => ({ step: (i + 1) * 10, metric })) }));
    others[2].state = 'stopped';
    others[2].points = others[2].points.slice(0, 1);
    const at30 = (metric: number): TrialProgress => ({ id: 't', state: 'running', points: [{ step: 30, metric }] });
    // 0.63: 2nd of 5 at rung 10 (top 2), 2nd of 4 at rung 20 (top 2): goes on.
    expect(evaluateTrial(s, at30(0.63), others).stop).toBe(false);
    // 0.61: 2nd of 5 at rung 10, but 3rd of 4 at rung 20: stopped there.
    expect(evaluateTrial(s, at30(0.61), others).reason).toMatch(/^asha: best 0.61 at rung 1 \(step 20\)/);
    // 0.58: 3rd of 5 at rung 10: stopped there.
    expect(evaluateTrial(s, at30(0.58), others).reason).toMatch(/^asha: best 0.58 at rung 0 \(step 10\)/);
  });
});
