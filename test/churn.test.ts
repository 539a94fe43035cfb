// Churn with real gradients: a grid of CPU-backend workers in the virtual-time simulator, 30 %
// of them replaced every 2 simulated seconds (often mid-task), reaches the MNIST target within
// 1.2x the rounds of the same grid left alone, and every version is committed exactly once.
import { describe, expect, test } from 'vitest';
import { DatasetRegistry } from '../server/data/registry.ts';
import { DEFAULT_RUN_SPEC, parseRunSpec } from '../shared/run-spec.ts';
import { churn } from '../bench/sim/churn.ts';
import { GridSim } from '../bench/sim/grid-sim.ts';
import { equalWorkers } from '../bench/sim/profiles.ts';
import { sharedDataDir } from './helpers/coordinator.ts';

const WORKERS = 10;
const SPEED = 1000; // examples/s each, virtual time

function simulation(): GridSim {
  const dataset = new DatasetRegistry(sharedDataDir).get('mnist-10k')!;
  // Evaluated every round (free in virtual time), so that the rounds to the target are exact.
  const spec = parseRunSpec({ ...DEFAULT_RUN_SPEC, dataset: 'mnist-10k', evalEvery: 1, stop: { targetAccuracy: 0.93, maxRounds: 500 } });
  const sim = new GridSim({ spec, dataset });
  for (const p of equalWorkers(WORKERS, SPEED)) sim.addWorker(p);
  return sim;
}

/** Committed versions, checked to be 1, 2, 3, ... with none twice and none skipped. */
function expectConsecutive(versions: number[]): void {
  expect(versions.length).toBeGreaterThan(0);
  expect(versions).toEqual(versions.map((_, i) => i + 1));
}

describe('churn with real gradients (virtual time)', () => {
  test('30 % of the workers replaced every 2 s: the target within 1.2x the rounds of a calm run, each version committed once', async () => {
    const calm = simulation();
    const calmOut = await calm.runUntil({ maxSimMs: 600_000 });
    calm.close();
    expect(calmOut.completed, calmOut.stopReason ?? 'no stop').toBe(true);
    expect(calmOut.accuracy).toBeGreaterThanOrEqual(0.93);
    expectConsecutive(calm.commits.map((p) => p.version));

    const rough = simulation();
    const log = churn(rough, { everyMs: 2_000, fraction: 0.3, seed: 7 });
    const roughOut = await rough.runUntil({ maxSimMs: 600_000 });
    rough.close();
    expect(roughOut.completed, roughOut.stopReason ?? 'no stop').toBe(true);
    expect(roughOut.accuracy).toBeGreaterThanOrEqual(0.93);
    expectConsecutive(rough.commits.map((p) => p.version));
    // The churn was real: workers left every 2 s, some of them holding a task of the open round.
    expect(log.left).toBeGreaterThanOrEqual(3 * Math.floor((roughOut.simMs - 1) / 2_000));
    expect(log.leftMidTask).toBeGreaterThan(0);
    expect(rough.workers.size).toBe(WORKERS);
    expect(roughOut.rounds, `calm ${calmOut.rounds} rounds, churn ${roughOut.rounds}`).toBeLessThanOrEqual(Math.ceil(1.2 * calmOut.rounds));
  });
});
