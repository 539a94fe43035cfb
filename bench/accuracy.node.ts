// `npm run bench -- accuracy [--rows cnn-mnist,cnn-fashion,transformer] [--workers 2]`: the
// example models trained across real workers (child processes running the CPU backend through
// the real protocol and sockets, as a tab's CPU path does) on the built-in datasets, each
// evaluated on its whole held-out split after the same numbers of examples as the PyTorch runs
// the goals are set against (Adam 1e-3 / AdamW 3e-3, batches of 64 / 32 windows, on this kind of
// machine). Parameters are copied when a commit crosses each mark and evaluated after the run,
// so evaluation does not slow the training it measures.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { cpuKernels } from '../shared/cpu/index.ts';
import { featuresAsFloat, labelWidthOf, type Dataset } from '../shared/dataset.ts';
import { forwardRange } from '../shared/layers/sequence.ts';
import type { RunModel } from '../shared/run-model.ts';
import type { RunSpecInput } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';

const root = resolve(import.meta.dirname, '..');

interface Mark {
  /** Training examples (windows for the transformer) seen. */
  examples: number;
  label: string;
  /** PyTorch's figure at that point (null: not measured there). */
  pytorch: number | null;
}

interface Plan {
  key: string;
  example: string;
  metric: 'accuracy' | 'loss';
  marks: Mark[];
  /** The goal, in words, and whether a measured row meets it. */
  goal: string;
  meets: (rows: { ours: number; pytorch: number | null }[]) => boolean;
}

const PLANS: Plan[] = [
  {
    key: 'cnn-mnist',
    example: 'mnist-cnn.yaml',
    metric: 'accuracy',
    // PyTorch's figures stop at 3 epochs; the run goes on to 5 to see where it levels.
    marks: [60_000, 120_000, 180_000, 240_000, 300_000].map((n, i) => ({ examples: n, label: `${i + 1} epoch${i ? 's' : ''}`, pytorch: [0.975, 0.98, 0.986][i] ?? null })),
    goal: '>= 0.985 test accuracy (10,000 digits)',
    meets: (rows) => Math.max(...rows.map((r) => r.ours)) >= 0.985,
  },
  {
    key: 'cnn-fashion',
    example: 'fashion-cnn.yaml',
    metric: 'accuracy',
    marks: [60_000, 120_000, 180_000].map((n, i) => ({ examples: n, label: `${i + 1} epoch${i ? 's' : ''}`, pytorch: [0.822, 0.848, 0.867][i] })),
    goal: 'within 1 point of PyTorch after the same examples',
    meets: (rows) => rows.every((r) => r.pytorch === null || r.ours >= r.pytorch - 0.01),
  },
  {
    key: 'transformer',
    example: 'moby-dick-transformer.yaml',
    metric: 'loss',
    marks: [250, 500, 1000, 1500].map((steps, i) => ({ examples: steps * 32, label: `${steps} steps of 32 windows`, pytorch: [2.33, 2.09, 1.87, 1.78][i] })),
    goal: 'validation loss within 5 % of PyTorch after the same characters',
    meets: (rows) => rows.every((r) => r.pytorch === null || r.ours <= r.pytorch * 1.05),
  },
];

/** Accuracy and mean cross-entropy (nats per label) of params on a whole split. */
function evaluate(net: RunModel, params: Float32Array, test: Dataset): { accuracy: number; loss: number } {
  const chunk = 128;
  const out = net.description.outShape;
  const classes = out[out.length - 1];
  const width = labelWidthOf(test);
  let right = 0;
  let loss = 0;
  for (let start = 0; start < test.count; start += chunk) {
    const b = Math.min(chunk, test.count - start);
    const { y } = forwardRange(net.description, params, featuresAsFloat(test, start, b), b, { kernels: cpuKernels });
    for (let r = 0; r < b * width; r++) {
      const row = y.subarray(r * classes, (r + 1) * classes);
      const label = test.y[start * width + r];
      let best = 0;
      let max = row[0];
      for (let c = 1; c < classes; c++) if (row[c] > max) (max = row[c]), (best = c);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
      loss += Math.log(sum) + max - row[label];
      if (best === label) right++;
    }
  }
  return { accuracy: right / (test.count * width), loss: loss / (test.count * width) };
}

async function measure(plan: Plan, workers: number, log: (m: string) => void) {
  const spec = parseRunSpecText(readFileSync(join(root, 'examples', plan.example), 'utf8')) as RunSpecInput;
  const last = plan.marks[plan.marks.length - 1].examples;
  // Train to the last mark; the run's own evaluations are rare (the marks are evaluated here).
  const runSpec = { ...spec, evalEvery: 100_000, checkpointEvery: 1_000_000, stop: { maxSamples: last } };
  const app = await buildApp({ dataDir: mkdtempSync(join(tmpdir(), 'crowdtrain-bench-accuracy-')), store: new SqliteStore(':memory:'), defaultRun: runSpec });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const run = [...app.crowdtrain.scheduler.runs.values()][0];
  const test = app.crowdtrain.datasets.forSpec(run.spec)!.test;
  const snapshots: { mark: Mark; samples: number; rounds: number; seconds: number; params: Float32Array }[] = [];
  const started = Date.now();
  let next = 0;
  app.crowdtrain.scheduler.onCommit(() => {
    while (next < plan.marks.length && run.samples >= plan.marks[next].examples) {
      snapshots.push({ mark: plan.marks[next], samples: run.samples, rounds: run.version, seconds: (Date.now() - started) / 1000, params: run.params.slice() });
      log(`${plan.key}: ${plan.marks[next].label} after ${run.version} rounds, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      next++;
    }
  });
  const children: ChildProcess[] = Array.from({ length: workers }, () => fork(join(root, 'bench', 'accuracy-worker.ts'), [url], { execArgv: ['--import', 'tsx'], stdio: 'inherit' }));
  let lastLog = 0;
  while (next < plan.marks.length && run.state === 'running') {
    await new Promise((r) => setTimeout(r, 500));
    if (Date.now() - lastLog > 15_000) {
      lastLog = Date.now();
      log(`${plan.key}: round ${run.version}, ${run.samples} examples, training loss ${run.loss?.toFixed(3)}, ${Math.round(run.metrics.at(-1)?.samplesPerSec ?? 0)} examples/s`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  for (const c of children) c.kill();
  await app.close();
  const rows = snapshots.map((s) => {
    const e = evaluate(run.net, s.params, test);
    const ours = plan.metric === 'accuracy' ? e.accuracy : e.loss;
    log(`${plan.key}: ${s.mark.label}: ${plan.metric} ${ours.toFixed(4)} (PyTorch ${s.mark.pytorch})`);
    return { mark: s.mark.label, examples: s.samples, rounds: s.rounds, seconds: Number(s.seconds.toFixed(1)), ours: Number(ours.toFixed(4)), pytorch: s.mark.pytorch };
  });
  return {
    model: plan.key,
    spec: `examples/${plan.example}`,
    metric: plan.metric === 'accuracy' ? 'test accuracy' : 'validation loss, nats/char',
    workers,
    heldOut: test.count * labelWidthOf(test),
    seconds: Number(seconds.toFixed(1)),
    goal: plan.goal,
    met: rows.length === plan.marks.length && plan.meets(rows),
    rows,
  };
}

export async function run(log: (m: string) => void, opts: { rows?: string; workers?: string } = {}): Promise<Record<string, unknown>> {
  const keys = (opts.rows ?? PLANS.map((p) => p.key).join(',')).split(',').map((k) => k.trim()).filter(Boolean);
  const plans = keys.map((k) => {
    const p = PLANS.find((x) => x.key === k);
    if (!p) throw new Error(`unknown row "${k}"; rows: ${PLANS.map((x) => x.key).join(', ')}`);
    return p;
  });
  const workers = Number(opts.workers ?? Math.max(1, cpus().length));
  log(`${plans.map((p) => p.key).join(', ')} with ${workers} CPU worker process(es) on ${cpus().length} cores`);
  const fresh: Awaited<ReturnType<typeof measure>>[] = [];
  for (const p of plans) fresh.push(await measure(p, workers, log));
  // Read-modify-write: models not measured now are kept.
  const file = join(root, 'bench', 'results', 'accuracy.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { models?: { model: string }[] }) : {};
  const models = [...(previous.models ?? []).filter((m) => !fresh.some((f) => f.model === m.model)), ...fresh];
  models.sort((a, b) => PLANS.findIndex((p) => p.key === a.model) - PLANS.findIndex((p) => p.key === b.model));
  return { models };
}
