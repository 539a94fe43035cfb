// `npm run bench -- pipeline`: pipeline rounds at equal global batch for P = 1, 2, 3 stages and
// M = 1, 2, 4 micro-batches: bytes relayed per round, round time, and the bubble (idle fraction)
// GPipe predicts beside the one measured. Each worker is its own process (CPU backends), so
// stages really run side by side, on however many cores the machine has.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { gpipeBubble } from '../shared/stage.ts';
import type { PipelineRoundStats } from '../server/rounds/pipeline-rounds.ts';

const LAYERS = [784, 256, 256, 256, 10];
const GLOBAL_BATCH = 256;
const WARMUP = 5;
const ROUNDS = 30;
const root = resolve(import.meta.dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(stages: number, microBatches: number, dataDir: string, log: (m: string) => void) {
  const app = await buildApp({
    dataDir,
    store: new SqliteStore(':memory:'),
    defaultRun: {
      model: { layers: LAYERS, activation: 'relu' },
      globalBatch: GLOBAL_BATCH,
      evalEvery: 100_000,
      checkpointEvery: 1_000_000,
      parallelism: { stages, replicas: 1, microBatches },
      sync: { minWorkers: stages, roundDeadlineMs: 60_000 },
      stop: { maxRounds: WARMUP + ROUNDS },
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const run = [...app.crowdtrain.scheduler.runs.values()][0];
  const rounds: PipelineRoundStats[] = [];
  const times: number[] = [];
  let last = 0;
  app.crowdtrain.scheduler.onCommit((r, point) => {
    if (r.version > WARMUP && last) times.push(point.time - last);
    last = point.time;
    const s = app.crowdtrain.scheduler.pipeline.lastStats.get(r.id);
    if (s && r.version > WARMUP) rounds.push(s);
  });
  const workers: ChildProcess[] = Array.from({ length: stages }, () =>
    spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'pipeline-worker.ts'), url], { cwd: root, stdio: 'ignore' }),
  );
  await new Promise<void>((done) => {
    const t = setInterval(() => {
      if (run.state === 'completed') {
        clearInterval(t);
        done();
      }
    }, 50);
  });
  for (const w of workers) w.kill('SIGTERM');
  await app.close();
  const roundMs = median(rounds.length ? rounds.map((r) => r.ms) : times);
  const busy = rounds.length ? median(rounds.map((r) => r.computeMs.reduce((a, b) => a + b, 0) / (stages * r.ms))) : 1;
  const row = {
    stages,
    micro_batches: microBatches,
    round_ms: roundMs,
    bytes_relayed_per_round: rounds.length ? median(rounds.map((r) => r.relayedBytes)) : 0,
    bubble_predicted: gpipeBubble(stages, microBatches),
    bubble_measured: stages > 1 ? 1 - busy : 0,
    samples_per_sec: (GLOBAL_BATCH * 1000) / median(times),
  };
  log(
    `P=${stages} M=${microBatches}: round ${row.round_ms.toFixed(1)} ms, ${(row.bytes_relayed_per_round / 1024).toFixed(0)} KiB relayed, ` +
      `bubble predicted ${row.bubble_predicted.toFixed(2)} measured ${row.bubble_measured.toFixed(2)}, ${row.samples_per_sec.toFixed(0)} samples/s`,
  );
  return row;
}

export async function run(log: (m: string) => void): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-bench-pipeline-'));
  log(`MLP ${LAYERS.join('-')}, global batch ${GLOBAL_BATCH}, ${ROUNDS} timed rounds after ${WARMUP}; one worker process per stage, CPU backends`);
  const rows = [];
  for (const stages of [1, 2, 3]) for (const m of stages === 1 ? [1] : [1, 2, 4]) rows.push(await measure(stages, m, dataDir, log));
  return { adapter: 'cpu (one process per stage)', model: LAYERS.join('-'), global_batch: GLOBAL_BATCH, cores: cpus().length, rows };
}
