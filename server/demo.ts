// `npm run demo -- [--spec FILE] --workers N [--target-accuracy A | --target-loss L] [--max-seconds S] [--json]`:
// a coordinator on a free port and N headless Chromium contributors training one run together:
// the spec in FILE (YAML or JSON), else the default MNIST run. The target is a test accuracy, or
// a held-out loss in nats per label (a language model's nats per character); unset, the spec's
// stop rule's, else accuracy 0.93. Exits 0 when the target is reached, 1 when it is not reached
// in time, 2 on a usage error or a bad spec.
// Examples: npm run demo -- --spec examples/mnist-cnn.yaml --workers 2 --max-seconds 300
//           npm run demo -- --spec examples/moby-dick-transformer.yaml --workers 2 --target-loss 2.5
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { modelLine } from '../shared/run-model.ts';
import { DEFAULT_RUN_SPEC, RunSpecError, type RunSpecInput } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { buildApp } from './app.ts';
import { buildPagesIfStale } from './build-pages.ts';
import { HeadlessWorkers } from './headless-workers.ts';

const usage = 'usage: npm run demo -- [--spec FILE] --workers N [--target-accuracy A | --target-loss L] [--max-seconds S] [--json] [--backend webgpu|cpu]';
let args;
try {
  args = parseArgs({
    options: {
      spec: { type: 'string' },
      workers: { type: 'string', default: '3' },
      // Unset (both): the spec's stop.targetAccuracy or stop.targetLoss, else accuracy 0.93.
      'target-accuracy': { type: 'string' },
      'target-loss': { type: 'string' },
      'max-seconds': { type: 'string', default: '600' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}
/** The run to train: the --spec file (validated as the coordinator would), else the default run. */
function readSpec(file: string | undefined): RunSpecInput {
  if (!file) return { ...DEFAULT_RUN_SPEC, evalEvery: 5 };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    console.error(`demo: cannot read the spec ${file}: ${(err as Error).message}`);
    process.exit(2);
  }
  try {
    return parseRunSpecText(text);
  } catch (err) {
    console.error(`demo: ${file} is not a valid run spec: ${(err as Error).message}`);
    process.exit(2);
  }
}
const spec = readSpec(args.spec);
const workers = Number(args.workers);
/** What the demo waits for: a test accuracy at or above, or a held-out loss at or below, a value. */
const target: { kind: 'accuracy' | 'loss'; value: number } =
  args['target-accuracy'] !== undefined
    ? { kind: 'accuracy', value: Number(args['target-accuracy']) }
    : args['target-loss'] !== undefined
      ? { kind: 'loss', value: Number(args['target-loss']) }
      : spec.stop?.targetAccuracy === undefined && spec.stop?.targetLoss !== undefined
        ? { kind: 'loss', value: spec.stop.targetLoss }
        : { kind: 'accuracy', value: spec.stop?.targetAccuracy ?? 0.93 };
const maxSeconds = Number(args['max-seconds']);
const problems = [
  !Number.isInteger(workers) || workers < 1 || workers > 64 ? `--workers must be an integer in [1, 64], got ${args.workers}` : '',
  args['target-accuracy'] !== undefined && args['target-loss'] !== undefined ? 'give --target-accuracy or --target-loss, not both' : '',
  target.kind === 'accuracy' && !(target.value > 0 && target.value <= 1) ? `--target-accuracy must be in (0, 1], got ${args['target-accuracy']}` : '',
  target.kind === 'loss' && !(target.value > 0) ? `--target-loss must be a positive number of nats, got ${args['target-loss']}` : '',
  !(maxSeconds > 0) ? `--max-seconds must be a positive number, got ${args['max-seconds']}` : '',
  args.backend && !['webgpu', 'cpu'].includes(args.backend) ? `--backend must be webgpu or cpu, got ${args.backend}` : '',
].filter(Boolean);
if (problems.length) {
  console.error(`${problems.join('\n')}\n${usage}`);
  process.exit(2);
}

const root = resolve(import.meta.dirname, '..');
const pagesDir = join(root, 'dist', 'pages');
const say = (msg: string) => {
  if (!args.json) console.log(msg);
  else console.error(msg);
};
await buildPagesIfStale(root, pagesDir, (m) => say(`demo: ${m}`));
const dataDir = process.env.CROWDTRAIN_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'crowdtrain-demo-'));
let app;
try {
  const { targetAccuracy: _a, targetLoss: _l, ...stop } = spec.stop ?? {};
  const goal = target.kind === 'accuracy' ? { targetAccuracy: target.value } : { targetLoss: target.value };
  app = await buildApp({ dataDir, pagesDir, defaultRun: { ...spec, stop: { ...stop, ...goal } } });
} catch (err) {
  // The schema passed; the dataset may be unknown or the model not fit it (checkSpecAgainstDataset).
  if (!(err instanceof RunSpecError)) throw err;
  console.error(`demo: ${args.spec ?? 'the default run'} cannot be trained here: ${err.message}`);
  process.exit(2);
}
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
const run = [...app.crowdtrain.scheduler.runs.values()][0];
const goalText = target.kind === 'accuracy' ? `test accuracy ${target.value}` : `held-out loss ${target.value} nats`;
say(`demo: coordinator at ${url}, run ${run.id} (${run.name}: ${modelLine(run.net)}), target ${goalText}; starting ${workers} headless workers…`);
/** The latest evaluation in words: accuracy, and for a language model its loss in nats and bits per character. */
const evaluation = () =>
  target.kind === 'accuracy'
    ? `accuracy ${run.accuracy?.toFixed(4) ?? '–'}`
    : `held-out loss ${run.evalLoss?.toFixed(3) ?? '–'} nats (${run.evalLoss === null ? '–' : (run.evalLoss / Math.LN2).toFixed(3)} bits)`;

const started = Date.now();
const tabs = await HeadlessWorkers.launch(url);
let code = 1;
try {
  await Promise.all(Array.from({ length: workers }, () => tabs.add(args.backend ? `backend=${args.backend}` : '')));
  say(`demo: ${workers} workers contributing after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const deadline = started + maxSeconds * 1000;
  let lastPrint = 0;
  while (run.state === 'running' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    if (Date.now() - lastPrint > 2000) {
      lastPrint = Date.now();
      const m = run.metrics.at(-1);
      say(
        `round ${run.version}  loss ${run.loss?.toFixed(4) ?? '–'}  ${evaluation()}  ` +
          `${Math.round(m?.samplesPerSec ?? 0)} samples/s  workers ${app.crowdtrain.scheduler.workersOf(run.id).length}`,
      );
    }
  }
  const reached = run.state === 'completed' && (target.kind === 'accuracy' ? run.accuracy !== null && run.accuracy >= target.value : run.evalLoss !== null && run.evalLoss <= target.value);
  const seconds = (Date.now() - started) / 1000;
  say(reached ? `demo: reached ${evaluation()} in ${run.version} rounds, ${seconds.toFixed(1)} s` : `demo: target ${goalText} not reached in ${maxSeconds} s (${evaluation()})`);
  if (args.json) console.log(JSON.stringify({ accuracy: run.accuracy, evalLoss: run.evalLoss, rounds: run.version, seconds: Number(seconds.toFixed(2)), samples: run.samples, workers }));
  code = reached ? 0 : 1;
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  code = 1;
} finally {
  await tabs.closeAll();
  await app.close();
}
process.exit(code);
