// `npm run bench -- comm-check`: the simulator against a real run. The same small local-mode
// config (MLP 784-64-10 on mnist-10k, H = 8, int8 both ways, target 0.9) trained twice: by a
// real coordinator (buildApp on 127.0.0.1) with 3 Node workers, each its own Socket.IO client
// running the CPU backend through the WorkerClient tabs use, and by bench/sim/ with 3 simulated
// workers at the speeds the coordinator measured for the real ones, on a loopback-like link.
// Bytes per example each way come from each coordinator's per-run traffic counters, examples
// and rounds to the target from the run. Writes bench/results/comm-check.json.
import { join, resolve } from 'node:path';
import { buildApp } from '../server/app.ts';
import { DatasetRegistry } from '../server/data/registry.ts';
import type { Run } from '../server/run.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { cpuBackendFor } from '../client/worker/backend.ts';
import { cpuStageBackend } from '../client/worker/stage-backend.ts';
import { WorkerClient } from '../client/worker/worker-client.ts';
import { microBatchOf, parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { GridSim } from './sim/grid-sim.ts';
import type { LinkProfile } from './sim/link.ts';

const root = resolve(import.meta.dirname, '..');

export const CHECK_SPEC: RunSpecInput = {
  name: 'comm-check',
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 64, 10] },
  optimizer: { kind: 'adamw', lr: 2e-3 },
  batchPerTask: 32,
  sync: { mode: 'local', innerSteps: 8, minWorkers: 3 },
  compression: 'int8',
  evalEvery: 1,
  evalExamples: 2000,
  checkpointEvery: 1_000_000,
  stop: { targetAccuracy: 0.9, maxRounds: 300 },
};
const WORKERS = 3;
/** The simulated workers' link: one machine's loopback, as the real workers have. */
const LOOPBACK: LinkProfile = { mbps: 10_000, latencyMs: 0.1 };

export interface CheckSide {
  examples_to_target: number | null;
  rounds: number;
  bytes_per_example_up: number;
  bytes_per_example_down: number;
  /** Snapshot bytes (HTTP) included in down. */
  snapshot_bytes: number;
  final_accuracy: number | null;
  /** Wall seconds (real) or simulated seconds to the stop. */
  seconds: number;
}

const round = (x: number, d: number) => Number(x.toFixed(d));

function side(run: Run, t: { socketIn: number; socketOut: number; httpOut: number } | undefined, seconds: number): CheckSide {
  const up = t?.socketIn ?? 0;
  const down = (t?.socketOut ?? 0) + (t?.httpOut ?? 0);
  const reached = run.state === 'completed' && (run.stopReason ?? '').startsWith('reached test accuracy');
  return {
    examples_to_target: reached ? run.samples : null,
    rounds: run.version,
    bytes_per_example_up: run.samples ? round(up / run.samples, 2) : 0,
    bytes_per_example_down: run.samples ? round(down / run.samples, 2) : 0,
    snapshot_bytes: t?.httpOut ?? 0,
    final_accuracy: run.accuracy,
    seconds: round(seconds, 2),
  };
}

/** Real runs, each followed by its simulation: one run of each is one sample of the round timing. */
const PAIRS = 3;

export async function run(log: (m: string) => void): Promise<Record<string, unknown>> {
  const pairs = [];
  for (let i = 0; i < PAIRS; i++) pairs.push(await pair(log));
  return {
    spec: CHECK_SPEC,
    workers: 'Node WorkerClient with the CPU backend, one Socket.IO connection each, in the coordinator\'s process',
    pairs,
  };
}

async function pair(log: (m: string) => void): Promise<{ speeds: number[]; real: CheckSide; simulated: CheckSide }> {
  const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data'));
  // Real: a coordinator on loopback and 3 worker clients (the CPU path of a tab), in this process.
  const app = await buildApp({ dataDir, store: new SqliteStore(':memory:'), evaluation: 'inline', defaultRun: CHECK_SPEC, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const scheduler = app.crowdtrain.scheduler;
  const realRun = [...scheduler.runs.values()][0];
  const started = Date.now();
  const workers = Array.from({ length: WORKERS }, () => {
    const w = new WorkerClient({
      url,
      backend: 'cpu',
      makeBackend: async (r) => cpuBackendFor(r, microBatchOf(r.spec)),
      makeStageBackend: async (_r, setup) => cpuStageBackend(setup),
    });
    w.start();
    return w;
  });
  let speeds: number[] = [];
  try {
    const limit = Date.now() + 900_000;
    let lastLog = 0;
    while (realRun.state === 'running' && Date.now() < limit) {
      await new Promise((r) => setTimeout(r, 200));
      const ws = scheduler.workersOf(realRun.id);
      if (ws.every((w) => w.speed.perSec > 0)) speeds = ws.map((w) => w.speed.perSec);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`real: round ${realRun.version}, ${realRun.samples} examples, accuracy ${realRun.accuracy?.toFixed(4) ?? '–'}, speeds ${speeds.map((s) => Math.round(s)).join(', ')} examples/s`);
      }
    }
  } finally {
    for (const w of workers) w.stop();
  }
  const real = side(realRun, scheduler.traffic.runs?.get(realRun.id), (Date.now() - started) / 1000);
  await app.close();
  log(`real: ${JSON.stringify(real)}`);
  if (speeds.length !== WORKERS) throw new Error('the real workers were never all measured');

  // Simulated: the same spec and seed, 3 workers at the speeds the coordinator measured.
  const dataset = new DatasetRegistry(dataDir).get('mnist-10k')!;
  const spec = parseRunSpec(CHECK_SPEC);
  const sim = new GridSim({ spec, dataset });
  for (const speed of speeds) sim.addWorker({ speed, up: LOOPBACK, down: LOOPBACK });
  const out = await sim.runUntil({ maxSimMs: 3_600_000 });
  sim.close();
  const simulated = side(sim.run, sim.port.traffic.runs?.get(sim.run.id), out.simMs / 1000);
  log(`simulated: ${JSON.stringify(simulated)}`);
  return { speeds: speeds.map((s) => Math.round(s)), real, simulated };
}
