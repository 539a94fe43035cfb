// Time to a target accuracy on a simulated grid: one GridSim run per grid, reporting virtual
// seconds, examples and rounds until the run's stop rule fires. The bench
// (bench/time-to-target.node.ts) and the tests call this; the grids are theirs to choose.
import type { LoadedDataset } from '../../server/context.ts';
import type { RunSpec } from '../../shared/run-spec.ts';
import { GridSim, type SimOutcome } from './grid-sim.ts';
import type { WorkerProfile } from './profiles.ts';

export interface TimeToTarget extends SimOutcome {
  workers: number;
  /** Σ of the workers' speeds, examples/s. */
  offered: number;
  /** Mean examples per committed round (the optimizer's batch). */
  meanBatch: number;
}

/** Runs `spec` (which must have a stop rule) on a grid of `profiles` until it stops or `maxSimMs` passes. */
export async function timeToTarget(spec: RunSpec, dataset: LoadedDataset, profiles: WorkerProfile[], maxSimMs = 3_600_000): Promise<TimeToTarget> {
  const sim = new GridSim({ spec, dataset });
  for (const p of profiles) sim.addWorker(p);
  const out = await sim.runUntil({ maxSimMs });
  sim.close();
  return {
    ...out,
    workers: profiles.length,
    offered: profiles.reduce((a, p) => a + p.speed, 0),
    meanBatch: out.rounds ? out.examples / out.rounds : 0,
  };
}

/** "1000" for equal speeds, "2000×2+500×2" for a mix (examples/s). */
export function describeSpeeds(profiles: WorkerProfile[]): string {
  const counts = new Map<number, number>();
  for (const p of profiles) counts.set(p.speed, (counts.get(p.speed) ?? 0) + 1);
  if (counts.size === 1) return String(profiles[0].speed);
  return [...counts].map(([s, n]) => `${s}×${n}`).join('+');
}
