// `npm run bench -- time-to-target`: virtual seconds until the default run reaches its target
// test accuracy on simulated grids of N = 1 ... 32 workers, equal speeds and mixed 4:1, on a
// classroom LAN (bench/sim/). Gradients are real, time is simulated, so the result depends on
// the simulation only, not on this machine's speed. Writes the "time_to_target" key of
// bench/results/scale.json (read-modify-write: the scale benchmark owns the other keys).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetRegistry } from '../server/data/registry.ts';
import { DEFAULT_RUN_SPEC, parseRunSpec } from '../shared/run-spec.ts';
import { CLASSROOM_LAN, equalWorkers, mixedWorkers, type WorkerProfile } from './sim/profiles.ts';
import { timeToTarget } from './sim/time-to-target.ts';

/** The dataset the simulated default run trains on. */
const TTT_DATASET = 'mnist-10k';

export const TTT = {
  target: 0.93,
  /** Rounds between evaluations (free in virtual time; 10 is the spec's default). */
  evalEvery: 5,
  /** Each grid runs once per seed (initialisation and example order); rows are the means. */
  seeds: [1, 2, 3],
  equalSpeed: 1000,
  fast: 2000,
  slow: 500,
  sizes: [1, 2, 4, 8, 16, 32],
  link: CLASSROOM_LAN,
  /** A run that has not reached the target by then counts as not reaching it. */
  maxSimMs: 1_800_000,
} as const;

export interface TimeToTargetRow {
  workers: number;
  /** [examples/s, how many workers] pairs. */
  speeds: [number, number][];
  /** Means over the seeds. */
  sim_seconds: number;
  examples: number;
  rounds: number;
  /** Mean examples per round (the optimizer's batch). */
  batch: number;
  /** sim_seconds of the fastest of these workers alone / this row's. */
  speedup: number;
  sim_seconds_by_seed: number[];
  reached: boolean;
}

const root = resolve(import.meta.dirname, '..');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, digits: number) => Number(x.toFixed(digits));

function speedsOf(profiles: WorkerProfile[]): [number, number][] {
  const counts = new Map<number, number>();
  for (const p of profiles) counts.set(p.speed, (counts.get(p.speed) ?? 0) + 1);
  return [...counts];
}

export async function run(log: (m: string) => void): Promise<Record<string, unknown>> {
  // The default run on the 10,000-digit subset (8,000 / 2,000), as the recorded results were measured.
  const dataset = new DatasetRegistry(resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data'))).get(TTT_DATASET)!;
  const grids: WorkerProfile[][] = [
    ...TTT.sizes.map((n) => equalWorkers(n, TTT.equalSpeed, TTT.link)),
    equalWorkers(1, TTT.fast, TTT.link), // the fastest of the mixed workers, alone
    ...TTT.sizes.filter((n) => n > 1).map((n) => mixedWorkers(n, TTT.fast, TTT.slow, TTT.link)),
  ];
  const rows: TimeToTargetRow[] = [];
  for (const profiles of grids) {
    const outs = [];
    for (const seed of TTT.seeds) {
      const spec = parseRunSpec({ ...DEFAULT_RUN_SPEC, dataset: TTT_DATASET, seed, evalEvery: TTT.evalEvery, stop: { targetAccuracy: TTT.target } });
      outs.push(await timeToTarget(spec, dataset, profiles, TTT.maxSimMs));
    }
    const row: TimeToTargetRow = {
      workers: profiles.length,
      speeds: speedsOf(profiles),
      sim_seconds: round(mean(outs.map((o) => o.simMs)) / 1000, 2),
      examples: Math.round(mean(outs.map((o) => o.examples))),
      rounds: round(mean(outs.map((o) => o.rounds)), 1),
      batch: Math.round(mean(outs.map((o) => o.meanBatch))),
      speedup: 1,
      sim_seconds_by_seed: outs.map((o) => round(o.simMs / 1000, 2)),
      reached: outs.every((o) => o.completed),
    };
    const fastest = Math.max(...profiles.map((p) => p.speed));
    const alone = rows.find((r) => r.workers === 1 && r.speeds[0][0] === fastest) ?? row;
    row.speedup = round(alone.sim_seconds / row.sim_seconds, 2);
    rows.push(row);
    log(`${row.workers} × ${row.speeds.map(([s, n]) => `${s}/s×${n}`).join(' + ')}: ${row.sim_seconds} s simulated (${row.sim_seconds_by_seed.join(', ')}), ${row.rounds} rounds of ${row.batch}, ${row.speedup}× the fastest alone${row.reached ? '' : ', TARGET NOT REACHED'}`);
  }
  // Read-modify-write: this benchmark owns only "time_to_target".
  const file = join(root, 'bench', 'results', 'scale.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...previous, time_to_target: rows }, null, 2)}\n`);
  log('wrote the time_to_target key of bench/results/scale.json');
  return { time_to_target: rows };
}
