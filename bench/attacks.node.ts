// `npm run bench -- attacks [--rows clean,sign-flip,...]`: what a hostile minority does to a run,
// with the plain mean and with the public default (centered clipping behind the learned norm
// bound). The real coordinator in the virtual-time simulator (bench/sim/), every honest gradient
// computed for real on this machine's CPU: 20 honest workers and 5 hostile ones (11 of 25 for
// IPM, the paper's setting), each attack of bench/sim/attacks.ts for the whole run, every row on
// the same seed. Writes bench/results/attacks.json (rows as they finish, so a run stopped midway
// keeps what it measured) and the "Attacks" section of docs/security.md (bench/attacks-report.ts).
//
// Two models, each for its whole run of 200 rounds of 1,280 honest examples. The MNIST CNN
// (examples/mnist-cnn.yaml, the default; results in attacks.json): on this machine's CPU a CNN
// gradient costs about 1.6 ms an example against 0.11 ms for the MLP, so its 18 rows take some two
// and a half hours; several processes may run different rows at once (`--rows`), each merging its
// rows into the results file. The MNIST MLP (examples/mnist-mlp.yaml, `--model mlp`; attacks-mlp.json):
// 4.3 epochs, its stop rule a test accuracy of 0.93, which the clean run reaches near the end.
// ATTACK_ROUNDS sets a shorter run, where replay reaches back a third of it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetRegistry } from '../server/data/registry.ts';
import { aggregationContext } from '../server/accumulator.ts';
import { microBatchOf, parseRunSpec, type RunSpec } from '../shared/run-spec.ts';
import { readSpecText } from '../shared/run-spec-text.ts';
import { writeAttacksSection, type AttackResults, type AttackRow } from './attacks-report.ts';
import { Adversary, ATTACKS, NoGradients, type AttackName } from './sim/attacks.ts';
import { CpuGradients, datasetSource } from './sim/gradients.ts';
import { GridSim } from './sim/grid-sim.ts';
import { CLASSROOM_LAN, equalWorkers } from './sim/profiles.ts';

const root = resolve(import.meta.dirname, '..');

const MODELS = {
  cnn: { example: 'mnist-cnn.yaml', label: 'CNN conv5x5(8)-pool-conv5x5(16)-pool-dense, 5,994 parameters, Adam 1e-3, batches of 64 per worker', rounds: 200, results: 'attacks.json', heading: '### Attacks (`npm run bench -- attacks`)' },
  mlp: { example: 'mnist-mlp.yaml', label: 'MLP 784-128-10, Adam 1e-3, batches of 64 per worker', rounds: 200, results: 'attacks-mlp.json', heading: '### Attacks on the MLP (`npm run bench -- attacks --model mlp`)' },
};
type ModelName = keyof typeof MODELS;
let MODEL: (typeof MODELS)[ModelName] = MODELS.cnn;

export const ATTACK_BENCH = {
  get example() {
    return MODEL.example;
  },
  honest: 20,
  hostile: 5,
  /** IPM's setting in the paper: 11 of 25 hostile. */
  ipmHostile: 11,
  /** Rounds of every row (ATTACK_ROUNDS in the environment shortens a smoke run). */
  get rounds() {
    return Number(process.env.ATTACK_ROUNDS ?? MODEL.rounds);
  },
  /** Examples/s of every simulated worker (all equal: the attack, not the speeds, is measured). */
  speed: 500,
  /** Rounds back a replaying worker reaches: 100, or a third of a run shorter than 200 rounds. */
  get replayRounds() {
    return this.rounds >= 200 ? 100 : Math.max(1, Math.floor(this.rounds / 3));
  },
  get evalEvery() {
    return Math.min(50, this.rounds);
  },
  /** The whole test split, for the final accuracy. */
  evalExamples: 10_000,
  seed: 1,
  /** The fixed bound the coordinator starts with (scheduler's maxGradientNorm default). */
  fixedBound: 1e4,
};

/** Rows: the attack, its knobs, and the hostile count. */
const ATTACK_ROWS: { attack: AttackName | 'none'; label: string; hostile: number; epsilon?: number }[] = [
  { attack: 'none', label: 'none (clean)', hostile: 0 },
  { attack: 'sign-flip', label: 'sign flip (−10 × g)', hostile: 5 },
  { attack: 'noise', label: 'random noise at the largest norm accepted', hostile: 5 },
  { attack: 'label-flip', label: 'label flip (9 − y)', hostile: 5 },
  { attack: 'alie', label: 'ALIE (z from n = 25, f = 5)', hostile: 5 },
  { attack: 'ipm', label: 'IPM ε = 0.1 (11 of 25)', hostile: 11, epsilon: 0.1 },
  { attack: 'replay', label: 'replay from 100 rounds back', hostile: 5 }, // a third of the run on a shorter one (replayRounds)
  { attack: 'ipm', label: 'IPM ε = 100 (5 of 25)', hostile: 5, epsilon: 100 },
  { attack: 'ipm', label: 'IPM ε = 100 (11 of 25)', hostile: 11, epsilon: 100 },
];
void ATTACKS;

const AGGREGATIONS = [
  { name: 'mean', aggregation: { rule: 'mean' as const } },
  { name: 'public default (centered-clip)', aggregation: undefined },
];

function specOf(aggregation: RunSpec['aggregation'] | { rule: 'mean' } | undefined): RunSpec {
  const text = readFileSync(join(root, 'examples', ATTACK_BENCH.example), 'utf8');
  const base = readSpecText(text) as Record<string, unknown>;
  return parseRunSpec({
    ...base,
    ...(aggregation ? { aggregation } : {}),
    // Every worker computes batchPerTask examples a round, honest or not, and the round waits for all.
    sync: { taskSizing: 'fixed', minWorkers: ATTACK_BENCH.honest + ATTACK_BENCH.hostile, maxBatch: (ATTACK_BENCH.honest + ATTACK_BENCH.hostile) * 64, roundDeadlineMs: 60_000 },
    stop: { maxRounds: ATTACK_BENCH.rounds },
    evalEvery: ATTACK_BENCH.evalEvery,
    evalExamples: ATTACK_BENCH.evalExamples,
    seed: ATTACK_BENCH.seed,
  });
}

async function runRow(row: (typeof ATTACK_ROWS)[number], agg: (typeof AGGREGATIONS)[number], log: (m: string) => void): Promise<AttackRow> {
  const spec = specOf(agg.aggregation);
  const registry = new DatasetRegistry(resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data')));
  const dataset = registry.forSpec(spec)!;
  const sim = new GridSim({ spec, dataset });
  const total = ATTACK_BENCH.honest + ATTACK_BENCH.hostile;
  const hostile = row.hostile;
  const honest = total - hostile;
  const context = () => aggregationContext(sim.run, sim.run.spec.aggregation, sim.run.paramCount);
  const attack = row.attack === 'none' ? null : row.attack;
  const flipped = attack === 'label-flip' ? new CpuGradients(sim.run.net, microBatchOf(spec), datasetSource({ ...dataset.train, y: dataset.train.y.map((y) => 9 - y) })) : undefined;
  const adversary = attack
    ? new Adversary({ attack, workers: total, hostile, largestAccepted: () => context().normBound!.refuseAbove(ATTACK_BENCH.fixedBound), flippedEngine: flipped, epsilon: row.epsilon, replayRounds: ATTACK_BENCH.replayRounds, seed: ATTACK_BENCH.seed })
    : null;
  const profiles = equalWorkers(total, ATTACK_BENCH.speed, CLASSROOM_LAN);
  for (let i = 0; i < honest; i++) sim.addWorker(profiles[i], `h${i + 1}`, adversary?.honest());
  const noCompute = attack && !Adversary.computesOwn(attack) ? new NoGradients(sim.run.paramCount) : undefined;
  for (let i = 0; i < hostile; i++) {
    const id = `x${i + 1}`;
    const b = adversary!.hostile(id);
    sim.addWorker(profiles[honest + i], id, noCompute && !b.engine ? { ...b, engine: noCompute } : b);
  }
  const started = Date.now();
  const out = await sim.runUntil({ maxSimMs: 24 * 3_600_000 });
  sim.close();
  const bound = context().normBound!;
  const result: AttackRow = {
    attack: row.label.replace('100 rounds', `${ATTACK_BENCH.replayRounds} rounds`),
    aggregation: agg.name,
    accuracy: out.accuracy ?? NaN,
    hostile,
    rounds: out.rounds,
    eval_loss: out.evalLoss,
    clipped_results: bound.clipped,
    norm_bound: Number.isFinite(bound.bound) ? Number(bound.bound.toPrecision(4)) : null,
    refused: sim.run.counters.rejected,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  log(`${row.label} × ${agg.name}: accuracy ${result.accuracy.toFixed(4)} after ${out.rounds} rounds (${result.clipped_results} results clipped, ${result.refused} refused, bound ${result.norm_bound}) in ${result.seconds} s`);
  return result;
}

export async function run(log: (m: string) => void, opts: { rows?: string; model?: string } = {}): Promise<Record<string, unknown>> {
  const name = (opts.model ?? 'cnn') as ModelName;
  if (!(name in MODELS)) throw new Error(`unknown model "${opts.model}" for the attacks benchmark; models: ${Object.keys(MODELS).join(', ')}`);
  MODEL = MODELS[name];
  const file = join(root, 'bench', 'results', MODEL.results);
  const wanted = opts.rows?.split(',').map((s) => s.trim());
  const keep = (label: string, attack: string) => !wanted || wanted.includes(attack) || wanted.includes(label);
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<AttackResults>) : {};
  // Rows of a run of another length are not this run's.
  const sameRun = (f: Partial<AttackResults>) => (f.settings as { rounds?: number } | undefined)?.rounds === ATTACK_BENCH.rounds;
  const rows: AttackRow[] = wanted && sameRun(previous) ? [...(previous.rows ?? [])] : [];
  const order = (r: AttackRow) => ATTACK_ROWS.findIndex((a) => a.label.replace('100 rounds', `${ATTACK_BENCH.replayRounds} rounds`) === r.attack) * 10 + AGGREGATIONS.findIndex((a) => a.name === r.aggregation);
  /** Writes the rows, with those another process wrote meanwhile for other rows of a run of this length. */
  const save = () => {
    const onFile = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<AttackResults>) : {};
    if (sameRun(onFile)) for (const r of onFile.rows ?? []) if (!rows.some((x) => x.attack === r.attack && x.aggregation === r.aggregation)) rows.push(r);
    rows.sort((a, b) => order(a) - order(b));
    writeFileSync(file, `${JSON.stringify(results(), null, 2)}\n`);
  };
  const settings = {
    model: `${ATTACK_BENCH.example} (${MODEL.label})`,
    workers: `${ATTACK_BENCH.honest} honest + ${ATTACK_BENCH.hostile} hostile (IPM: ${ATTACK_BENCH.honest + ATTACK_BENCH.hostile - ATTACK_BENCH.ipmHostile} + ${ATTACK_BENCH.ipmHostile})`,
    rounds: ATTACK_BENCH.rounds,
    examples_per_round: (ATTACK_BENCH.honest + ATTACK_BENCH.hostile) * 64,
    accuracy_on: `the whole MNIST test split (${ATTACK_BENCH.evalExamples} digits) after the last round`,
    seed: ATTACK_BENCH.seed,
    public_default: parseRunSpec({}).aggregation,
    simulator: 'bench/sim/ (the real scheduler and rounds on the in-memory port, virtual time, real CPU gradients)',
  };
  const results = (): AttackResults => {
    const clean = rows.find((r) => r.hostile === 0 && r.aggregation === 'mean');
    return { clean_accuracy: clean?.accuracy ?? null, rows, settings };
  };
  for (const row of ATTACK_ROWS) {
    for (const agg of AGGREGATIONS) {
      if (!keep(row.label, row.attack)) continue;
      const r = await runRow(row, agg, log);
      const at = rows.findIndex((x) => x.attack === r.attack && x.aggregation === r.aggregation);
      if (at >= 0) rows[at] = r;
      else rows.push(r);
      save();
    }
  }
  writeAttacksSection(root, results(), '', MODEL.heading);
  log('wrote the Attacks section of docs/security.md');
  return { ...results(), results_file: MODEL.results } as unknown as Record<string, unknown>;
}
