// `crowdtrain worker`: a contributor without a browser. It joins a coordinator exactly as a tab
// does (the same protocol and the same DOM-free WorkerClient), computes on WebGPU through Dawn or
// on the CPU across threads, keeps shards in a cache directory, reconnects by itself, and leaves
// cleanly on SIGINT/SIGTERM: its socket closes at once, so the coordinator re-queues its open task
// then and not at the lease's end.
import { availableParallelism } from 'node:os';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { chooseBackend, makeBackend, type BackendChoice } from '../client/worker/choose-backend.ts';
import type { GradientBackend } from '../client/worker/backend.ts';
import { ThreadedCpuBackend } from '../client/worker/threaded-backend.ts';
import { WorkerClient, type WorkerStats } from '../client/worker/worker-client.ts';
import { describeModel } from '../shared/layers/sequence.ts';
import type { Backend, RunInfo, RunSummary } from '../shared/protocol.ts';
import { microBatchOf } from '../shared/run-spec.ts';
import { CpuThreadPool } from './cpu-lanes.ts';
import { DAWN_ENV_MARK, dawnEnvironment, installDawn } from './dawn.ts';
import { defaultCacheDir, DiskShardCache } from './shard-cache.ts';

export const WORKER_USAGE = `Usage:
  crowdtrain worker [--server URL] [--backend auto|webgpu|cpu] [--threads N] [--nickname NAME] [--cap F] [--json]
      Contributes this machine to a coordinator's run until stopped (Ctrl-C).

Options:
  -s, --server URL     the coordinator (default: $CROWDTRAIN_SERVER, else http://127.0.0.1:3000)
  -b, --backend KIND   auto (default: time WebGPU through Dawn against the CPU, keep the faster),
                       webgpu, or cpu
  -n, --threads N      CPU threads for a task (default: the cores available minus one, here %CORES%)
      --nickname NAME  the name the board shows
      --cap F          the fraction of the time this worker may compute, in (0, 1] (default 1)
      --cache-dir DIR  where shards are kept (default: $CROWDTRAIN_CACHE_DIR, else ~/.cache/crowdtrain)
      --json           one JSON object per line instead of the progress line
  -h, --help           this text

WebGPU in Node needs the webgpu package (Dawn) and a Vulkan driver: a GPU vendor's, or on a
machine without a GPU the SwiftShader driver that Debian's chromium package installs.`;

export interface WorkerCliOptions {
  server: string;
  backend: 'auto' | Backend;
  threads: number;
  nickname?: string;
  cap: number;
  json: boolean;
  cacheDir: string;
}

export class WorkerUsageError extends Error {}

/** The options from argv and the environment, or a WorkerUsageError naming what is wrong. */
export function parseWorkerArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): WorkerCliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        server: { type: 'string', short: 's' },
        backend: { type: 'string', short: 'b' },
        threads: { type: 'string', short: 'n' },
        nickname: { type: 'string' },
        cap: { type: 'string' },
        'cache-dir': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new WorkerUsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const server = (values.server ?? env.CROWDTRAIN_SERVER ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(server)) throw new WorkerUsageError(`--server must be an http:// or https:// URL, got "${server}"`);
  const backend = values.backend ?? 'auto';
  if (backend !== 'auto' && backend !== 'webgpu' && backend !== 'cpu') throw new WorkerUsageError(`--backend must be auto, webgpu or cpu, got "${backend}"`);
  const defaultThreads = Math.max(1, availableParallelism() - 1);
  const threads = values.threads === undefined ? defaultThreads : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new WorkerUsageError(`--threads must be a whole number from 1 to 256, got "${values.threads}"`);
  const cap = values.cap === undefined ? 1 : Number(values.cap);
  if (!(cap > 0 && cap <= 1)) throw new WorkerUsageError(`--cap must be a number in (0, 1], got "${values.cap}"`);
  return { server, backend, threads, nickname: values.nickname, cap, json: !!values.json, cacheDir: values['cache-dir'] ?? defaultCacheDir(env) };
}

/**
 * The CPU backend on `threads` worker threads. One thread too runs off the main one: the main
 * thread stays free for the socket and for a signal, so SIGTERM mid-task leaves at once.
 */
function cpuBackend(run: RunInfo, maxBatch: number, threads: number): GradientBackend {
  const model = describeModel(run.layers, run.inputShape);
  return new ThreadedCpuBackend(model, maxBatch, new CpuThreadPool(threads, run.layers, run.inputShape, maxBatch, model.paramCount));
}

interface Printer {
  line(stats: WorkerStats, extra: Record<string, unknown>): void;
  note(text: string): void;
  end(): void;
}

function printer(json: boolean): Printer {
  const tty = !json && process.stdout.isTTY;
  let last = '';
  let lastState = '';
  let lastAt = 0;
  return {
    line(s, extra) {
      // Not a terminal (a log file, a pipe): a line when the state changes, else one every 10 s.
      const now = Date.now();
      if (!tty && s.state === lastState && now - lastAt < 10_000) return;
      lastState = s.state;
      lastAt = now;
      if (json) return void process.stdout.write(`${JSON.stringify({ type: 'progress', state: s.state, workerId: s.workerId, runId: s.run?.runId ?? null, round: s.run?.version ?? null, examplesPerSec: Math.round(s.samplesPerSec * 10) / 10, examples: s.contributedSamples, tasks: s.tasksDone, rejected: s.tasksRejected, ...extra })}\n`);
      const run = s.run ? `run ${String(extra.runName ?? s.run.runId)} · round ${s.run.version}` : 'no run yet';
      const text = `${s.state} · ${run} · ${s.samplesPerSec.toFixed(1)} examples/s · ${s.contributedSamples.toLocaleString('en')} examples contributed · ${extra.backend}`;
      if (text === last) return;
      last = text;
      if (tty) process.stdout.write(`\r\x1b[2K${text}`);
      else process.stdout.write(`${text}\n`);
    },
    note(text) {
      if (json) return void process.stdout.write(`${JSON.stringify({ type: 'note', message: text })}\n`);
      process.stdout.write(`${tty && last ? '\n' : ''}${text}\n`);
      last = '';
    },
    end() {
      if (tty && last) process.stdout.write('\n');
    },
  };
}

/**
 * Runs the worker until SIGINT/SIGTERM; resolves with the exit status.
 * @example process.exitCode = await runWorker(['--server', 'http://10.0.0.2:3000', '--threads', '3']);
 */
export async function runWorker(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let opts: WorkerCliOptions | 'help';
  try {
    opts = parseWorkerArgs(argv, env);
  } catch (err) {
    process.stderr.write(`crowdtrain worker: ${(err as Error).message}\n\n${WORKER_USAGE.replace('%CORES%', String(Math.max(1, availableParallelism() - 1)))}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${WORKER_USAGE.replace('%CORES%', String(Math.max(1, availableParallelism() - 1)))}\n`);
    return 0;
  }
  // Dawn's Vulkan loader must be on the library path when the process starts: start again with it.
  if (opts.backend !== 'cpu') {
    const extra = dawnEnvironment(env);
    if (extra.LD_LIBRARY_PATH) return restartWith({ ...env, ...extra, [DAWN_ENV_MARK]: '1' });
    Object.assign(process.env, extra);
  }
  const out = printer(opts.json);
  const o = opts;
  let dawnReason: string | null = null;
  if (o.backend !== 'cpu') {
    const dawn = await installDawn();
    if (!dawn.ok) {
      dawnReason = dawn.reason;
      out.note(`WebGPU: ${dawn.reason}; using the CPU`);
    }
  }
  let label = `cpu ×${o.threads}`;
  let runName: string | undefined;
  const choices = new Map<string, BackendChoice>();
  const cache = new DiskShardCache(o.cacheDir);

  /** The backend for a model, timed once per model (auto) or as asked. */
  const choose = async (net: { model: RunInfo['model'] | null; layers: RunInfo['layers']; inputShape: number[] }, maxBatch: number): Promise<BackendChoice> => {
    const key = JSON.stringify(net.layers);
    let choice = choices.get(key);
    if (choice) return choice;
    choice = await chooseBackend({ model: net.model ?? null, layers: net.layers, inputShape: net.inputShape }, maxBatch, o.backend === 'webgpu' ? 'webgpu' : undefined);
    // The choice timed one CPU thread; this worker has o.threads of them.
    const t = choice.timings;
    if (choice.kind === 'webgpu' && t.webgpu !== undefined && t.cpu !== undefined && t.cpu / o.threads < t.webgpu) {
      choice = { ...choice, kind: 'cpu', reason: `${t.cpu.toFixed(1)} ms on one CPU thread (so about ${(t.cpu / o.threads).toFixed(1)} on ${o.threads}) vs ${t.webgpu.toFixed(1)} ms on WebGPU` };
    }
    choices.set(key, choice);
    const adapter = choice.adapter ? ` (${[choice.adapter.vendor, choice.adapter.architecture || choice.adapter.description].filter(Boolean).join(' ')})` : '';
    out.note(`backend: ${choice.kind}${choice.kind === 'webgpu' ? adapter : ` ×${o.threads}`}: ${choice.reason}`);
    return choice;
  };

  const makeWorkerBackend = async (run: RunInfo): Promise<GradientBackend> => {
    runName = run.name;
    const maxBatch = microBatchOf(run.spec);
    const choice = o.backend === 'cpu' || dawnReason ? null : await choose(run, maxBatch);
    if (choice?.kind !== 'webgpu') {
      label = `cpu ×${o.threads}`;
      return cpuBackend(run, maxBatch, o.threads);
    }
    const adapter = choice.adapter;
    label = `webgpu${adapter ? ` ${[adapter.vendor, adapter.architecture || adapter.description].filter(Boolean).join(' ')}` : ''}`;
    return makeBackend(choice, run, maxBatch);
  };

  // The backend the coordinator is told at join: with auto, the one that wins on the current run's model.
  let backendKind: Backend = o.backend === 'webgpu' && !dawnReason ? 'webgpu' : 'cpu';
  let adapterInfo: { vendor: string; architecture: string; description: string } | undefined;
  let cpuReason = dawnReason ? `WebGPU: ${dawnReason}` : o.backend === 'cpu' ? 'CPU chosen by request' : undefined;
  if (o.backend === 'auto' && !dawnReason) {
    const current = await currentRun(o.server);
    if (current) {
      const c = await choose(current.net, Math.max(current.spec.batchPerTask, current.spec.globalBatch ?? 0));
      backendKind = c.kind;
      if (c.kind === 'cpu') cpuReason = c.reason;
      if (c.adapter) adapterInfo = { vendor: c.adapter.vendor, architecture: c.adapter.architecture, description: c.adapter.description };
    }
  }
  let lastMessage: string | null = null;
  const client = new WorkerClient({
    url: o.server,
    backend: backendKind,
    makeBackend: makeWorkerBackend,
    cap: o.cap,
    shardCache: cache,
    hello: { ...(o.nickname ? { nickname: o.nickname } : {}), ...(adapterInfo ? { adapter: adapterInfo } : {}), userAgent: `crowdtrain-worker node/${process.versions.node} ${process.platform}-${process.arch}`, ...(backendKind === 'cpu' && cpuReason ? { backendReason: cpuReason.slice(0, 400) } : {}) },
    onChange: (s) => {
      if (s.state === 'stopped') return;
      if (s.message && s.message !== lastMessage) out.note(s.message);
      lastMessage = s.message;
      out.line(s, { backend: label, runName });
    },
  });
  out.note(`crowdtrain worker: joining ${o.server} (${o.backend === 'cpu' ? `CPU, ${o.threads} thread${o.threads > 1 ? 's' : ''}` : `backend ${o.backend}`})`);
  client.start();
  const started = Date.now();
  const tick = setInterval(() => out.line(client.stats, { backend: label, runName }), 1000);

  return new Promise<number>((resolve) => {
    let left = false;
    const leave = (signal: string) => {
      if (left) return;
      left = true;
      clearInterval(tick);
      client.stop();
      out.end();
      const s = client.stats;
      const summary = { type: 'summary', signal, seconds: Math.round((Date.now() - started) / 100) / 10, examples: s.contributedSamples, tasks: s.tasksDone, rejected: s.tasksRejected, backend: label, shardsFromCache: cache.hits };
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else process.stdout.write(`crowdtrain worker: left on ${signal} after ${summary.seconds} s: ${summary.examples.toLocaleString('en')} examples in ${summary.tasks} tasks accepted, ${summary.rejected} refused (${label})\n`);
      // Whatever still holds the loop (a reconnect timer, a fetch) must not keep a stopped worker alive.
      setTimeout(() => process.exit(0), 2000).unref();
      resolve(0);
    };
    process.on('SIGINT', () => leave('SIGINT'));
    process.on('SIGTERM', () => leave('SIGTERM'));
  });
}

/** The run a joining worker is given (the newest running one), or null when the coordinator cannot say yet. */
async function currentRun(server: string): Promise<Pick<RunSummary, 'net' | 'spec'> | null> {
  try {
    const res = await fetch(`${server}/api/runs`);
    if (!res.ok) return null;
    const { runs } = (await res.json()) as { runs: (Pick<RunSummary, 'net' | 'spec'> & { state: string })[] };
    return runs.filter((r) => r.state === 'running').at(-1) ?? runs.at(-1) ?? null;
  } catch {
    return null;
  }
}

/** Runs this same command in a child process with `env`, passing signals on; resolves with its status. */
function restartWith(env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
    const pass = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', pass);
    process.on('SIGTERM', pass);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
