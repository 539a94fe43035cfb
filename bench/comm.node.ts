// `npm run bench -- comm [--model cnn|transformer] [--rows sync-none,h32-int8,...]`: how much
// traffic each sync mode and coding needs to reach a target, on a simulated grid of 16 volunteers
// at home (bench/sim/: the real coordinator in virtual time, every task computed for real on this
// machine's CPU, every message's bytes on the workers' links). Rows: synchronous rounds with
// f32, fp16 and int8 gradients; local mode (DiLoCo) with H = 8, 32, 128 inner steps and f32,
// int8 and top-k pseudo-gradients. Writes bench/results/comm.json (rows of a partial run replace
// the same rows of the file); bench/comm-report.ts turns it into the docs section.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetRegistry } from '../server/data/registry.ts';
import type { LoadedDataset } from '../server/context.ts';
import { Evaluator } from '../server/evaluator.ts';
import { parseRunSpec, type RunSpec } from '../shared/run-spec.ts';
import { readSpecText } from '../shared/run-spec-text.ts';
import { GridSim } from './sim/grid-sim.ts';
import { HOME_BROADBAND, threeSpeedWorkers, type WorkerProfile } from './sim/profiles.ts';

const root = resolve(import.meta.dirname, '..');

export type ModelKey = 'cnn' | 'transformer';

interface ModelPlan {
  example: string;
  metric: 'accuracy' | 'loss';
  /** Examples/s (windows/s for the transformer) of the middle speed class; the grid is 4 × 2s, 8 × s, 4 × s/2. */
  speed: number;
  /** CNN: the target accuracy. Transformer: set from the sync f32 row (see `budget`). */
  target?: number;
  /**
   * Transformer: the sync f32 row trains this many windows with no target; the validation loss it
   * has then is every row's target.
   */
  budget?: number;
  /** Cap of a sync f32 row that has a fixed target (the CNN's), examples. */
  referenceCap?: number;
  /** Every other row stops at this multiple of the sync f32 row's examples to target. */
  capFactor: number;
  /** Held-out examples each evaluation uses (the first ones of the test split). */
  evalExamples: number;
  /** Evaluate a sync row every this many examples (local rows: every outer round). */
  evalEveryExamples: number;
  /** Sync rows: the round's batch cap and learning-rate scaling (the spec's sync settings). */
  sync: { maxBatch?: number; lrScaling?: 'linear' | 'sqrt' | 'none' };
  /** Local rows: the inner optimizer (every worker's own) and the outer one, the same for every local row of the model. */
  inner: { kind: 'adamw'; lr: number; weightDecay: number };
  outer: { lr: number; momentum: number; nesterov: boolean };
}

export const COMM = {
  workers: 16,
  link: HOME_BROADBAND,
  seed: 1,
  models: {
    cnn: {
      example: 'mnist-cnn.yaml',
      metric: 'accuracy',
      speed: 1000,
      target: 0.98,
      referenceCap: 400_000,
      capFactor: 1.5,
      evalExamples: 2000,
      evalEveryExamples: 8192,
      sync: {},
      inner: { kind: 'adamw', lr: 3e-3, weightDecay: 0 },
      outer: { lr: 0.7, momentum: 0.9, nesterov: true },
    },
    transformer: {
      example: 'moby-dick-transformer.yaml',
      metric: 'loss',
      speed: 100,
      budget: 8192,
      capFactor: 1.5,
      evalExamples: 128,
      evalEveryExamples: 512,
      sync: { maxBatch: 256, lrScaling: 'sqrt' },
      inner: { kind: 'adamw', lr: 3e-3, weightDecay: 0.01 },
      outer: { lr: 0.7, momentum: 0.9, nesterov: true },
    },
  } satisfies Record<ModelKey, ModelPlan>,
  rows: [
    { mode: 'sync', compression: 'none' },
    { mode: 'sync', compression: 'fp16' },
    { mode: 'sync', compression: 'int8' },
    ...[8, 32, 128].flatMap((h) => (['none', 'int8', 'topk'] as const).map((c) => ({ mode: 'local', compression: c, innerSteps: h }))),
  ] as RowPlan[],
};

interface RowPlan {
  mode: 'sync' | 'local';
  compression: 'none' | 'fp16' | 'int8' | 'topk';
  innerSteps?: number;
}

export interface CommRow {
  model: ModelKey;
  mode: 'sync' | 'local';
  /** compression.up (down is the same, int8 for topk). */
  compression: string;
  inner_steps: number | null;
  /** Payload bytes ÷ committed examples, up to the stop: results up; tasks, parameters and snapshots down. */
  bytes_per_example_up: number;
  bytes_per_example_down: number;
  /** Of bytes_per_example_down: the task indices (4 bytes an example), and parameters (values or coded deltas, and every worker's first snapshot). */
  down_indices_per_example: number;
  down_params_per_example: number;
  /** Of down_params_per_example: the snapshots (HTTP). */
  down_snapshots_per_example: number;
  /** Committed examples and simulated seconds at the evaluation that met the target; null: not within the cap. */
  examples_to_target: number | null;
  seconds_to_target: number | null;
  /** Accuracy (CNN) or validation loss in nats per character (transformer) of the last parameters. */
  final_metric: number | null;
  target: number;
  /** Where the row stopped (examples), and the cap it ran under. */
  examples: number;
  cap: number;
  rounds: number;
  sim_seconds: number;
  /** Real seconds this row took on this machine. */
  wall_seconds: number;
  note?: string;
}

const rowKey = (r: { mode: string; compression: string; innerSteps?: number | null; inner_steps?: number | null }) =>
  r.mode === 'sync' ? `sync-${r.compression}` : `h${r.innerSteps ?? r.inner_steps}-${r.compression}`;

function exampleSpec(plan: ModelPlan): Record<string, unknown> {
  return readSpecText(readFileSync(join(root, 'examples', plan.example), 'utf8')) as Record<string, unknown>;
}

/** The example's spec with the row's mode, coding, evaluation cadence and stop rule. */
export function rowSpec(key: ModelKey, row: RowPlan, stop: { targetAccuracy?: number; targetLoss?: number; maxSamples: number }): RunSpec {
  const plan: ModelPlan = COMM.models[key];
  const base = exampleSpec(plan);
  const common = { ...base, seed: COMM.seed, compression: row.compression, stop, evalExamples: plan.evalExamples, checkpointEvery: 1_000_000 };
  if (row.mode === 'sync') {
    const maxBatch = plan.sync.maxBatch ?? 1024;
    return parseRunSpec({ ...common, sync: { mode: 'sync', ...plan.sync }, evalEvery: Math.max(1, Math.round(plan.evalEveryExamples / maxBatch)) });
  }
  return parseRunSpec({ ...common, optimizer: plan.inner, sync: { mode: 'local', innerSteps: row.innerSteps, outer: plan.outer }, evalEvery: 1 });
}

function grid(plan: ModelPlan): WorkerProfile[] {
  return threeSpeedWorkers(COMM.workers, plan.speed, COMM.link);
}

interface Simulated {
  examples: number;
  rounds: number;
  simMs: number;
  bytesUp: number;
  bytesDown: number;
  /** Of bytesDown: task indices, and parameters (values, deltas, snapshots). */
  downTasks: number;
  downParams: number;
  snapshots: number;
  reachedAt: { examples: number; simMs: number } | null;
  final: number;
  /** Every evaluation: committed examples, virtual ms, metric. */
  curve: [number, number, number][];
}

/**
 * One row on the grid until its stop rule fires, or until the next round would take it past
 * `cap` examples (that round is not computed: a local round can be a few epochs).
 */
async function simulate(spec: RunSpec, dataset: LoadedDataset, profiles: WorkerProfile[], metric: 'accuracy' | 'loss', cap: number, log: (m: string) => void, label: string): Promise<Simulated> {
  const sim = new GridSim({ spec, dataset });
  const curve: [number, number, number][] = [];
  let lastLog = 0;
  const wall = Date.now();
  sim.scheduler.onCommit((run, point) => {
    const value = metric === 'accuracy' ? point.accuracy : point.evalLoss;
    if (value === null) return;
    curve.push([point.samples, point.time, value]);
    if (Date.now() - lastLog > 20_000 || run.state !== 'running') {
      lastLog = Date.now();
      const { up, down } = sim.traffic();
      log(`  ${label}: round ${point.version}, ${point.samples.toLocaleString('en-US')} examples, ${(point.time / 1000).toFixed(1)} s simulated, ${metric} ${value.toFixed(4)}, ${(up / point.samples).toFixed(1)} / ${(down / point.samples).toFixed(1)} B/example up / down (${Math.round((Date.now() - wall) / 1000)} s real)`);
    }
  });
  for (const p of profiles) sim.addWorker(p);
  const out = await sim.runUntil({ maxSimMs: 24 * 3_600_000, until: () => sim.run.samples + sim.openExamples() > cap });
  sim.close();
  const byKind = sim.downBytesByKind();
  const reached = out.completed && /^reached (test accuracy|held-out loss)/.test(out.stopReason ?? '');
  const final = new Evaluator(dataset.test, spec.evalExamples).evaluate(sim.run.net, sim.run.params);
  return {
    examples: out.examples,
    rounds: out.rounds,
    simMs: out.simMs,
    bytesUp: out.bytesUp,
    bytesDown: out.bytesDown,
    downTasks: byKind.tasks,
    downParams: byKind.params,
    snapshots: sim.port.traffic.runs?.get(sim.run.id)?.httpOut ?? 0,
    reachedAt: reached ? { examples: out.examples, simMs: out.simMs } : null,
    final: metric === 'accuracy' ? final.accuracy : final.loss,
    curve,
  };
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

function toRow(key: ModelKey, row: RowPlan, s: Simulated, target: number, cap: number, wallMs: number, note?: string): CommRow {
  return {
    model: key,
    mode: row.mode,
    compression: row.compression,
    inner_steps: row.innerSteps ?? null,
    bytes_per_example_up: s.examples ? round(s.bytesUp / s.examples, 2) : 0,
    bytes_per_example_down: s.examples ? round(s.bytesDown / s.examples, 2) : 0,
    down_indices_per_example: s.examples ? round(s.downTasks / s.examples, 2) : 0,
    down_params_per_example: s.examples ? round(s.downParams / s.examples, 2) : 0,
    down_snapshots_per_example: s.examples ? round(s.snapshots / s.examples, 2) : 0,
    examples_to_target: s.reachedAt?.examples ?? null,
    seconds_to_target: s.reachedAt ? round(s.reachedAt.simMs / 1000, 2) : null,
    final_metric: round(s.final, 4),
    target: round(target, 4),
    examples: s.examples,
    cap,
    rounds: s.rounds,
    sim_seconds: round(s.simMs / 1000, 2),
    wall_seconds: Math.round(wallMs / 1000),
    ...(note ? { note } : {}),
  };
}

/** Runs one model's rows (the sync f32 row first when it is asked for, or when a later row needs its target). */
/** `order`: the rows to run, in that order. */
async function runModel(key: ModelKey, order: string[], previous: CommRow[], log: (m: string) => void): Promise<CommRow[]> {
  const wanted = (k: string) => order.includes(k);
  const plan: ModelPlan = COMM.models[key];
  const spec0 = rowSpec(key, COMM.rows[0], { maxSamples: 1 });
  const dataset = new DatasetRegistry(resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data'))).forSpec(spec0)!;
  const profiles = grid(plan);
  const rows: CommRow[] = [];
  let reference = previous.find((r) => r.model === key && rowKey(r) === 'sync-none');
  const runReference = wanted('sync-none') || !reference || reference.examples_to_target === null;
  if (runReference) {
    const started = Date.now();
    const ref = COMM.rows[0];
    if (plan.metric === 'accuracy') {
      const cap = plan.referenceCap!;
      log(`${key} sync-none: to ${plan.target} test accuracy (first ${plan.evalExamples} test examples), at most ${cap.toLocaleString('en-US')} examples`);
      const s = await simulate(rowSpec(key, ref, { targetAccuracy: plan.target, maxSamples: cap }), dataset, profiles, 'accuracy', cap, log, `${key} sync-none`);
      reference = toRow(key, ref, s, plan.target!, cap, Date.now() - started);
    } else {
      // The target: the validation loss the sync f32 row has after `budget` windows; its examples to
      // target are those of its first evaluation at or below that loss.
      const budget = plan.budget!;
      log(`${key} sync-none: ${budget.toLocaleString('en-US')} windows, whose final validation loss (first ${plan.evalExamples} windows) sets the target`);
      const s = await simulate(rowSpec(key, ref, { maxSamples: budget }), dataset, profiles, 'loss', Infinity, log, `${key} sync-none`);
      const target = s.final;
      const first = s.curve.find(([, , loss]) => loss <= target);
      s.reachedAt = first ? { examples: first[0], simMs: first[1] } : { examples: s.examples, simMs: s.simMs };
      reference = toRow(key, ref, s, target, budget, Date.now() - started, `target = this row's validation loss after ${budget.toLocaleString('en-US')} windows`);
    }
    rows.push(reference);
    saveRow(reference);
    log(summary(reference));
  }
  const refExamples = reference!.examples_to_target;
  if (refExamples === null) throw new Error(`${key}: the sync f32 row did not reach its target within ${reference!.cap} examples; no cap for the other rows`);
  const target = reference!.target;
  const cap = Math.round(plan.capFactor * refExamples);
  for (const k of order.filter((x) => x !== 'sync-none')) {
    const row = COMM.rows.find((r) => rowKey(r) === k)!;
    const started = Date.now();
    const stop = { ...(plan.metric === 'accuracy' ? { targetAccuracy: target } : { targetLoss: target }), maxSamples: cap };
    const spec = rowSpec(key, row, stop);
    // After the probe rounds (4 steps a worker), a round is H steps for the median worker, 16 × H × batch
    // examples or more: when that alone is past the cap, the row could take no full round within it.
    const firstRound = row.mode === 'local' ? COMM.workers * row.innerSteps! * spec.batchPerTask : 0;
    if (firstRound > cap) {
      const r: CommRow = {
        model: key, mode: row.mode, compression: row.compression, inner_steps: row.innerSteps ?? null,
        bytes_per_example_up: 0, bytes_per_example_down: 0, down_indices_per_example: 0, down_params_per_example: 0, down_snapshots_per_example: 0, examples_to_target: null, seconds_to_target: null, final_metric: null,
        target, examples: 0, cap, rounds: 0, sim_seconds: 0, wall_seconds: 0,
        note: `not run: a full round is at least ${firstRound.toLocaleString('en-US')} examples, more than the cap`,
      };
      rows.push(r);
      saveRow(r);
      log(summary(r));
      continue;
    }
    log(`${key} ${k}: to ${plan.metric} ${plan.metric === 'accuracy' ? '>=' : '<='} ${target.toFixed(4)}, at most ${cap.toLocaleString('en-US')} examples`);
    const s = await simulate(spec, dataset, profiles, plan.metric, cap, log, `${key} ${k}`);
    const r = toRow(key, row, s, target, cap, Date.now() - started);
    rows.push(r);
    saveRow(r);
    log(summary(r));
  }
  return rows;
}

const resultsFile = join(root, 'bench', 'results', 'comm.json');
const rowId = (r: CommRow) => `${r.model}:${rowKey(r)}`;

/** The file's rows with `fresh` in place of the same rows, in table order (models, then COMM.rows). */
function mergedRows(fresh: CommRow[]): { file: Record<string, unknown>; rows: CommRow[] } {
  // Read again each time: a run of the other model may have written meanwhile.
  const file = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>) : {};
  const byId = new Map(((file.rows as CommRow[] | undefined) ?? []).map((r) => [rowId(r), r]));
  for (const r of fresh) byId.set(rowId(r), r);
  const order = (Object.keys(COMM.models) as ModelKey[]).flatMap((m) => COMM.rows.map((row) => `${m}:${rowKey(row)}`));
  return { file, rows: order.filter((k) => byId.has(k)).map((k) => byId.get(k)!) };
}

/** Writes one finished row into comm.json at once, so that a long benchmark stopped midway keeps what it measured. */
function saveRow(r: CommRow): void {
  const { file, rows } = mergedRows([r]);
  writeFileSync(resultsFile, `${JSON.stringify({ ...file, rows }, null, 2)}\n`);
}

function summary(r: CommRow): string {
  const reached = r.examples_to_target !== null ? `target at ${r.examples_to_target.toLocaleString('en-US')} examples, ${r.seconds_to_target} s simulated` : `target not reached within ${r.cap.toLocaleString('en-US')} examples`;
  return `${r.model} ${rowKey(r)}: ${r.bytes_per_example_up} / ${r.bytes_per_example_down} B/example up / down, ${reached}, final ${r.final_metric ?? '–'}${r.note ? ` (${r.note})` : ''} [${r.wall_seconds} s real]`;
}

export async function run(log: (m: string) => void, opts: { model?: string; rows?: string } = {}): Promise<Record<string, unknown>> {
  const models = (opts.model ? opts.model.split(',') : ['cnn', 'transformer']) as ModelKey[];
  for (const m of models) if (!(m in COMM.models)) throw new Error(`unknown model "${m}"; one of ${Object.keys(COMM.models).join(', ')}`);
  const known = COMM.rows.map(rowKey);
  const asked = opts.rows ? opts.rows.split(',') : known;
  for (const k of asked) if (!known.includes(k)) throw new Error(`unknown row "${k}"; rows: ${known.join(', ')}`);
  const previous = mergedRows([]).rows;
  const fresh: CommRow[] = [];
  for (const m of models) fresh.push(...(await runModel(m, asked, previous, log)));
  const { rows } = mergedRows(fresh);
  return {
    settings: {
      workers: COMM.workers,
      link: COMM.link,
      seed: COMM.seed,
      models: Object.fromEntries(Object.entries(COMM.models).map(([k, p]) => [k, { ...p, grid: grid(p).map((w) => w.speed) }])),
    },
    rows,
  };
}
