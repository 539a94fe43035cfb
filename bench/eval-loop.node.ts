// `npm run bench -- eval-loop`: how long the coordinator's event loop stalls while a transformer
// is evaluated, with the evaluation inline (on the event loop, at the commit) and in the
// evaluation thread (server/eval-thread.ts). The real Scheduler and commit step (Adam on the
// model's parameters) on the in-memory port and the system clock; one simulated worker answers
// each task after 20 ms with a fixed small gradient, so rounds commit continuously; every
// round asks for an evaluation (evalEvery 1) of the same held-out token windows, so the thread
// evaluates back to back. perf_hooks.monitorEventLoopDelay samples the loop's delay over a
// window of wall time per mode, and over the same rounds without any evaluation (the floor the
// rest of the machine's load sets). Not a test: the numbers depend on what else the machine runs.
//
// @example npm run bench -- eval-loop --seconds 30
import { loadavg } from 'node:os';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { EvalThread } from '../server/eval-thread.ts';
import { Evaluator } from '../server/evaluator.ts';
import { MemoryPort } from '../server/memory-port.ts';
import { Run } from '../server/run.ts';
import { Scheduler, type Evaluation, type SchedulerOptions } from '../server/scheduler.ts';
import type { Dataset } from '../shared/dataset.ts';
import { PROTOCOL_VERSION, type TaskMeta } from '../shared/protocol.ts';
import { createRng } from '../shared/rng.ts';
import { modelLine } from '../shared/run-model.ts';
import { parseRunSpec, type RunSpec } from '../shared/run-spec.ts';

const CONTEXT = 64;
const VOCAB = 83;
const WIDTH = 64;
/** Held-out windows each evaluation scores (default). */
const EVAL_WINDOWS = 1000;
/** monitorEventLoopDelay's sampling interval, ms. */
const RESOLUTION_MS = 5;
/** A simulated worker's compute time per task, ms. */
const TASK_MS = 20;

const LAYERS = [
  { kind: 'embedding', vocab: VOCAB, dim: WIDTH },
  { kind: 'positional' },
  { kind: 'transformer-block', heads: 4 },
  { kind: 'transformer-block', heads: 4 },
  { kind: 'dense', out: VOCAB },
];

/** Token windows of a seeded random text, each position labelled with the next token. */
function heldOut(count: number): Dataset {
  const rng = createRng(5);
  const text = Uint8Array.from({ length: count * CONTEXT + 1 }, () => Math.floor(rng.uniform(0, VOCAB)));
  const x = new Uint8Array(count * CONTEXT);
  const y = new Uint8Array(count * CONTEXT);
  for (let i = 0; i < count; i++) {
    x.set(text.subarray(i * CONTEXT, (i + 1) * CONTEXT), i * CONTEXT);
    y.set(text.subarray(i * CONTEXT + 1, (i + 1) * CONTEXT + 1), i * CONTEXT);
  }
  return { count, features: CONTEXT, classes: VOCAB, x, y, labelWidth: CONTEXT, inputs: 'tokens' };
}

type Mode = 'none' | 'inline' | 'thread';

interface ModeResult {
  mode: Mode;
  window_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /** The same from a 5 ms interval timer's lateness. */
  timer_p99_ms: number;
  timer_max_ms: number;
  rounds: number;
  rounds_per_sec: number;
  evaluations: number;
  eval_s_mean: number | null;
  loadavg_1m: number;
}

async function measure(mode: Mode, spec: RunSpec, test: Dataset, seconds: number, log: (m: string) => void): Promise<ModeResult> {
  const port = new MemoryPort();
  const thread = mode === 'thread' ? new EvalThread() : null;
  const inline = mode === 'inline' ? new Evaluator(test) : null;
  const evalTimes: number[] = [];
  const evaluate: SchedulerOptions['evaluate'] = (run) => {
    const t0 = performance.now();
    if (inline) {
      const ev = inline.evaluate(run.net, run.params);
      evalTimes.push(performance.now() - t0);
      return ev;
    }
    return thread!.evaluate(run.id, { key: 'held-out', examples: () => test, layers: run.net.layers, inputShape: run.net.inputShape, params: run.params }).then((ev: Evaluation | null) => {
      if (ev) evalTimes.push(performance.now() - t0);
      return ev;
    });
  };
  const scheduler = new Scheduler({ port, traffic: port.traffic, log: pino({ level: 'silent' }), evaluate });
  const run = new Run(mode === 'none' ? { ...spec, evalEvery: 100_000 } : spec, { name: 'held-out', features: CONTEXT, classes: VOCAB, trainCount: 100_000, shards: [], exampleShape: [CONTEXT] });
  if (thread) {
    // The thread's start (loading TypeScript) happens once per coordinator: not part of the window.
    const one = { ...test, count: 1 };
    await thread.evaluate('warm-up', { key: 'warm-up', examples: () => one, layers: run.net.layers, inputShape: run.net.inputShape, params: run.params });
  }
  scheduler.addRun(run);
  const gradient = new Float32Array(run.paramCount).fill(1e-5);
  let open = true;
  port.connect('w', (msg) => {
    if (msg.kind === 'run' && msg.meta) setTimeout(() => scheduler.ready('w', { runId: run.id, version: 0 }), 1);
    if (msg.kind !== 'task') return;
    const meta: TaskMeta = msg.meta;
    setTimeout(() => {
      if (!open) return;
      scheduler.result('w', { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: 4 }, gradient.buffer.slice(0), (ack) => {
        if (ack.ok && open) setTimeout(() => scheduler.ready('w', { runId: run.id, version: meta.version + 1 }), 1);
      });
    }, TASK_MS);
  });

  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  // The same measure by hand (a timer's lateness), which also sees a stall the window ends in.
  const gaps = createHistogram();
  let tick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    gaps.record(Math.max(1, Math.round((now - tick - RESOLUTION_MS) * 1e6)));
    tick = now;
  }, RESOLUTION_MS);
  const started = performance.now();
  scheduler.join('w', { protocol: PROTOCOL_VERSION, backend: 'cpu', adapter: { vendor: 'bench', architecture: '', description: '' } });
  while (performance.now() - started < seconds * 1000) await new Promise((r) => setTimeout(r, 100));
  const windowMs = performance.now() - started;
  // Let both timers fire once more: a stall that just ended is then counted.
  await new Promise((r) => setTimeout(r, 4 * RESOLUTION_MS));
  clearInterval(ticker);
  delay.disable();
  open = false;
  const rounds = run.version;
  scheduler.close();
  port.disconnect('w');
  await thread?.close();
  const ms = (ns: number) => ns / 1e6;
  const result: ModeResult = {
    mode,
    window_s: windowMs / 1000,
    p50_ms: ms(delay.percentile(50)),
    p99_ms: ms(delay.percentile(99)),
    max_ms: ms(delay.max),
    mean_ms: ms(delay.mean),
    timer_p99_ms: ms(gaps.percentile(99)),
    timer_max_ms: ms(gaps.max),
    rounds,
    rounds_per_sec: (rounds * 1000) / windowMs,
    evaluations: evalTimes.length,
    eval_s_mean: evalTimes.length ? evalTimes.reduce((a, b) => a + b, 0) / evalTimes.length / 1000 : null,
    loadavg_1m: loadavg()[0],
  };
  log(`${mode}: loop delay p50 ${result.p50_ms.toFixed(1)} ms, p99 ${result.p99_ms.toFixed(1)} ms, max ${result.max_ms.toFixed(0)} ms (timer: p99 ${result.timer_p99_ms.toFixed(1)}, max ${result.timer_max_ms.toFixed(0)} ms); ${rounds} rounds, ${result.evaluations} evaluations of ${result.eval_s_mean?.toFixed(1) ?? '–'} s (load ${result.loadavg_1m.toFixed(1)})`);
  return result;
}

/** `windows` (not a bench/run.ts option) shrinks the evaluation for a quick check of this file. */
export async function run(log: (m: string) => void, opts: { seconds?: string; windows?: string } = {}): Promise<Record<string, unknown>> {
  const seconds = Number(opts.seconds ?? 30);
  const windows = Number(opts.windows ?? EVAL_WINDOWS);
  const spec = parseRunSpec({ name: 'eval-loop', model: { layers: LAYERS }, optimizer: { kind: 'adamw', lr: 3e-3 }, batchPerTask: 32, evalEvery: 1, evalExamples: windows, sync: { taskSizing: 'fixed' } });
  const test = heldOut(windows);
  const probe = new Run(spec, { name: 'held-out', features: CONTEXT, classes: VOCAB, trainCount: 1, shards: [], exampleShape: [CONTEXT] });
  log(`${modelLine(probe.net)}; ${windows} windows of ${CONTEXT} tokens per evaluation; ${seconds} s per mode`);
  // 'none': the same rounds without evaluations, the floor the machine's other load sets; it
  // alternates with 'thread' so that both see the same background. 'inline' is one long stall
  // per evaluation whatever the window, so it runs once.
  const rows: ModeResult[] = [];
  for (const mode of ['none', 'thread', 'none', 'thread', 'inline'] as const) rows.push(await measure(mode, spec, test, seconds, log));
  return {
    model: { layers: LAYERS, params: probe.paramCount, context: CONTEXT, vocab: VOCAB },
    eval_windows: windows,
    task_ms: TASK_MS,
    resolution_ms: RESOLUTION_MS,
    rows,
  };
}
