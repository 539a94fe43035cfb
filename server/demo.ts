// `npm run demo -- --workers N [--target-accuracy A] [--max-seconds S] [--json]`: a coordinator on
// a free port and N headless Chromium contributors training the default MNIST run together.
// Exits 0 when the target accuracy is reached, 1 when it is not reached in time.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_RUN_SPEC } from '../shared/run-spec.ts';
import { buildApp } from './app.ts';
import { buildPagesIfStale } from './build-pages.ts';
import { HeadlessWorkers } from './headless-workers.ts';

const usage = 'usage: npm run demo -- --workers N [--target-accuracy A] [--max-seconds S] [--json] [--backend webgpu|cpu]';
let args;
try {
  args = parseArgs({
    options: {
      workers: { type: 'string', default: '3' },
      'target-accuracy': { type: 'string', default: '0.93' },
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
const workers = Number(args.workers);
const target = Number(args['target-accuracy']);
const maxSeconds = Number(args['max-seconds']);
const problems = [
  !Number.isInteger(workers) || workers < 1 || workers > 64 ? `--workers must be an integer in [1, 64], got ${args.workers}` : '',
  !(target > 0 && target <= 1) ? `--target-accuracy must be in (0, 1], got ${args['target-accuracy']}` : '',
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
const app = await buildApp({ dataDir, pagesDir, defaultRun: { ...DEFAULT_RUN_SPEC, evalEvery: 5, stop: { targetAccuracy: target } } });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
const run = [...app.crowdtrain.scheduler.runs.values()][0];
say(`demo: coordinator at ${url}, run ${run.id} (${run.name}), target test accuracy ${target}; starting ${workers} headless workers…`);

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
        `round ${run.version}  loss ${run.loss?.toFixed(4) ?? '–'}  accuracy ${run.accuracy?.toFixed(4) ?? '–'}  ` +
          `${Math.round(m?.samplesPerSec ?? 0)} samples/s  workers ${app.crowdtrain.scheduler.workersOf(run.id).length}`,
      );
    }
  }
  const reached = run.state === 'completed' && run.accuracy !== null && run.accuracy >= target;
  const seconds = (Date.now() - started) / 1000;
  say(reached ? `demo: reached ${run.accuracy!.toFixed(4)} test accuracy in ${run.version} rounds, ${seconds.toFixed(1)} s` : `demo: target ${target} not reached in ${maxSeconds} s (accuracy ${run.accuracy?.toFixed(4) ?? '–'})`);
  if (args.json) console.log(JSON.stringify({ accuracy: run.accuracy, rounds: run.version, seconds: Number(seconds.toFixed(2)), samples: run.samples, workers }));
  code = reached ? 0 : 1;
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  code = 1;
} finally {
  await tabs.closeAll();
  await app.close();
}
process.exit(code);
