// Churn on a simulated grid: every so often a fraction of the workers leave (tabs closed, often
// mid-task) and as many new ones join with unmeasured speeds, as volunteers come and go.
import { createRng } from '../../shared/rng.ts';
import type { GridSim } from './grid-sim.ts';
import type { WorkerProfile } from './profiles.ts';

export interface ChurnOptions {
  /** Virtual ms between replacements. */
  everyMs: number;
  /** Share of the present workers replaced each time (rounded, at least one). */
  fraction: number;
  /** Seed of the choice of who leaves. */
  seed?: number;
  /** The profile of a newcomer; default: the leaver's. */
  newcomer?: (leaver: WorkerProfile) => WorkerProfile;
}

export interface ChurnLog {
  left: number;
  joined: number;
  /** Leavers that held a task of the open round when they left. */
  leftMidTask: number;
}

/**
 * Replaces workers on a schedule; the returned log fills as the simulation runs.
 * @example const log = churn(sim, { everyMs: 2000, fraction: 0.3 });
 */
export function churn(sim: GridSim, opts: ChurnOptions): ChurnLog {
  const rng = createRng(opts.seed ?? 1);
  const log: ChurnLog = { left: 0, joined: 0, leftMidTask: 0 };
  sim.every(opts.everyMs, () => {
    const present = [...sim.workers.values()];
    const n = Math.min(present.length, Math.max(1, Math.round(present.length * opts.fraction)));
    const busy = new Set(sim.scheduler.sync.openTasks(sim.run.id).map((t) => t.workerId));
    for (let k = 0; k < n; k++) {
      const [leaver] = present.splice(rng.int(present.length), 1);
      if (busy.has(leaver.id)) log.leftMidTask++;
      sim.removeWorker(leaver.id, 'churn');
      log.left++;
      sim.addWorker(opts.newcomer ? opts.newcomer(leaver.profile) : leaver.profile);
      log.joined++;
    }
  });
  return log;
}
