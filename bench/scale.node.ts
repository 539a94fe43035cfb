// `npm run bench -- scale`: the real coordinator (buildApp, in this process, on 127.0.0.1) with N
// simulated workers (bench/scale-worker.ts, in a child process so the coordinator keeps its own
// core) speaking the real protocol over real sockets. Per row: offered and committed examples/s,
// efficiency, speed-up over the fastest worker alone, rounds/s, round overhead, bytes per
// example, and the coordinator's CPU and memory. The virtual-time time-to-target rows of the same
// results file (`time_to_target`) are bench/sim/'s; this file keeps them when it writes.
//
// @example npm run bench -- scale --rows 1,4,4mixed --seconds 5 --warmup 2 --links loopback
// SCALE_DEBUG=1 logs each round of the window (open→close, commit→commit, busiest compute);
// SCALE_PROF=<dir> writes the coordinator's CPU profile of each row's window there;
// SCALE_SIMULATOR_PROF=<dir> writes a CPU profile of the simulator process there (node --cpu-prof).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { DEFAULT_RUN_SPEC, DEFAULT_SYNC, type RunSpecInput } from '../shared/run-spec.ts';
import type { FromWorkers, SimProfile, ToWorkers, WorkerStats } from './scale-worker.ts';

const root = resolve(import.meta.dirname, '..');

/** A row of the table: how many workers, how fast, and whether they come and go. */
interface RowPlan {
  key: string;
  /** [examples/s, workers] pairs. */
  speeds: [number, number][];
  churn: { fraction: number; everyMs: number } | null;
  /** This row's sync.targetRoundMs (others: --target-round-ms, default the spec's). */
  targetRoundMs?: number;
}

/** What a simulated worker's network adds to each message. */
interface LinkProfile {
  name: string;
  describe: string;
  downBps: number;
  upBps: number;
  latencyMs: number;
}

const ROWS: RowPlan[] = [
  ...[1, 4, 16, 64, 256].map((n): RowPlan => ({ key: String(n), speeds: [[1000, n]], churn: null })),
  { key: '4mixed', speeds: [[2000, 2], [500, 2]], churn: null },
  { key: '64mixed', speeds: [[2000, 32], [500, 32]], churn: null },
  // A tenth of the grid replaced every 5 s (new workers start unmeasured, so they are probed).
  { key: '64churn', speeds: [[1000, 64]], churn: { fraction: 0.1, everyMs: 5000 } },
  // Longer rounds spread the coordinator's fixed work per worker and round (a gradient in, the
  // parameters out) over more examples.
  { key: '256@2000', speeds: [[1000, 256]], churn: null, targetRoundMs: 2000 },
];

const LINKS: LinkProfile[] = [
  { name: 'loopback', describe: 'loopback, no added delay', downBps: 0, upBps: 0, latencyMs: 0 },
  // The classroom LAN of the virtual-time simulator (bench/sim/profiles.ts), so the two tables compare.
  { name: 'lan', describe: 'each worker on a classroom LAN: 100 Mbit/s down, 40 Mbit/s up, 5 ms one-way latency', downBps: 100e6, upBps: 40e6, latencyMs: 5 },
];

/** The run of every row: the default MNIST MLP on mnist-10k (as recorded), no stop rule, rounds paced by targetRoundMs. */
function rowSpec(targetRoundMs: number): RunSpecInput {
  const { stop: _stop, ...rest } = DEFAULT_RUN_SPEC;
  // maxBatch out of the way: this bench measures the schedule, not the batch policy.
  return { ...rest, dataset: 'mnist-10k', sync: { targetRoundMs, maxBatch: 1_000_000 }, stop: {} };
}

export interface ScaleOptions {
  rows?: string;
  seconds?: string;
  warmup?: string;
  links?: string;
  children?: string;
  'target-round-ms'?: string;
}

/** A full garbage collection (the flag can be set at run time; `gc` is then global in a new context). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/** The coordinator's CPU profile over the window only (SCALE_PROF=<dir>; open it in Chrome's DevTools). */
async function startProfile() {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) => new Promise<T>((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r as T))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    async stop(file: string): Promise<string> {
      const { profile } = await post<{ profile: object }>('Profiler.stop');
      session.disconnect();
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

/** Forks one simulator process for `profiles` and waits until all its workers hold parameters. */
async function startSimulator(url: string, profiles: SimProfile[], churn: RowPlan['churn'], seed: number) {
  const prof = process.env.SCALE_SIMULATOR_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCALE_SIMULATOR_PROF}`] : [];
  const child = fork(join(root, 'bench', 'scale-worker.ts'), [], { cwd: root, execArgv: ['--import', 'tsx', ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: FromWorkers[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (m: FromWorkers) => {
    if (m.type === 'error') console.error(`[scale] simulator: ${m.message}`);
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async <T extends FromWorkers['type']>(type: T, ms: number): Promise<Extract<FromWorkers, { type: T }>> => {
    const end = Date.now() + ms;
    for (;;) {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0] as Extract<FromWorkers, { type: T }>;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`simulator: no "${type}" within ${ms} ms`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(200)]);
    }
  };
  child.send({ type: 'start', url, profiles, churn, seed } satisfies ToWorkers);
  return {
    child,
    connected: () => next('connected', 120_000),
    mark: () => child.send({ type: 'mark' } satisfies ToWorkers),
    stop: async (): Promise<WorkerStats> => {
      child.send({ type: 'stop' } satisfies ToWorkers);
      return (await next('stats', 30_000)).stats;
    },
  };
}

async function measureRow(plan: RowPlan, link: LinkProfile, o: { seconds: number; warmup: number; children: number; targetRoundMs: number; dataDir: string }, log: (m: string) => void) {
  const targetRoundMs = plan.targetRoundMs ?? o.targetRoundMs;
  const spec = rowSpec(targetRoundMs);
  // The rows share this process: collect what earlier rows left, so each row's RSS is its own.
  collectGarbage();
  // Every simulated worker connects from 127.0.0.1: no cap per address here.
  const app: FastifyInstance = await buildApp({ dataDir: o.dataDir, store: new SqliteStore(':memory:'), defaultRun: spec, maxWorkersPerAddress: Infinity });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const { scheduler } = app.crowdtrain;
  const run = [...scheduler.runs.values()][0];
  // Each commit: when, the run's totals then, and how long its round was open.
  const commits: { version: number; at: number; samples: number; bytesIn: number; bytesOut: number; roundMs: number }[] = [];
  let lastRoundMs = NaN;
  scheduler.onRoundClosed((_r, ms) => (lastRoundMs = ms));
  scheduler.onCommit((r) => commits.push({ version: r.version, at: performance.now(), samples: r.samples, bytesIn: scheduler.traffic.bytesIn, bytesOut: scheduler.traffic.bytesOut, roundMs: lastRoundMs }));

  const profiles: SimProfile[] = plan.speeds.flatMap(([speed, n]) => Array.from({ length: n }, () => ({ speed, downBps: link.downBps, upBps: link.upBps, latencyMs: link.latencyMs })));
  const workers = profiles.length;
  // Children take the workers in turn, so that each holds the same mix of speeds.
  const children = Math.max(1, Math.min(o.children, workers));
  const sims: Awaited<ReturnType<typeof startSimulator>>[] = [];
  try {
    for (let c = 0; c < children; c++) {
      sims.push(await startSimulator(url, profiles.filter((_, i) => i % children === c), plan.churn && { ...plan.churn }, 1 + c));
    }
    await Promise.all(sims.map((s) => s.connected()));
    // Warm-up: the workers get measured, and the run's first evaluation (a cold one: it builds
    // its network and test tensors) is behind us; later evaluations fall in the window as they come.
    const warm = performance.now() + o.warmup * 1000;
    const { evalEvery } = run.spec;
    while (performance.now() < warm || run.version <= evalEvery) {
      if (performance.now() > warm + 60_000) throw new Error(`row ${plan.key}: the run did not pass round ${evalEvery} in a minute`);
      await sleep(100);
    }

    if (process.env.SCALE_DEBUG) {
      const speeds = scheduler.workersOf(run.id).map((w) => Math.round(w.speed.perSec)).sort((a, b) => a - b);
      log(`after warm-up: ${speeds.length} workers, measured speeds min ${speeds[0]} median ${speeds[speeds.length >> 1]} max ${speeds.at(-1)}; version ${run.version}; open tasks ${scheduler.sync.openTasks(run.id).map((t) => t.examples).join(',')}`);
    }
    for (const s of sims) s.mark();
    const profile = process.env.SCALE_PROF ? await startProfile() : undefined;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const counters0 = { ...run.counters };
    let rss = process.memoryUsage.rss();
    const end = t0 + o.seconds * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(500, end - performance.now()));
      rss = Math.max(rss, process.memoryUsage.rss());
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuWall = (performance.now() - t0) / 1000;
    const counters = { late: run.counters.late - counters0.late, rejected: run.counters.rejected - counters0.rejected, roundsTimedOut: run.counters.roundsTimedOut - counters0.roundsTimedOut };
    const stats = await Promise.all(sims.map((s) => s.stop()));
    if (profile) log(`coordinator profile of the window: ${await profile.stop(join(process.env.SCALE_PROF!, `scale-${link.name}-${plan.key}.cpuprofile`))}`);

    // Rates between the first and the last commit of the window, so that a window's edges do not
    // cut a round in two; bytes over the same span.
    const inWindow = commits.filter((c) => c.at >= t0 && c.at <= t0 + cpuWall * 1000);
    if (inWindow.length < 2) throw new Error(`row ${plan.key}: fewer than two rounds committed in the ${o.seconds} s window`);
    const first = inWindow[0];
    const last = inWindow[inWindow.length - 1];
    const span = (last.at - first.at) / 1000;
    const samples = last.samples - first.samples;
    const rounds = last.version - first.version;

    // Overhead of a round: the time from the previous round's commit to its own (everything one
    // step costs) minus the compute of its busiest worker, as the workers reported it.
    const busiest = new Map<number, number>();
    for (const s of stats) for (const [v, ms] of s.busiestMs) busiest.set(v, Math.max(busiest.get(v) ?? 0, ms));
    const overheads: number[] = [];
    const roundMs: number[] = [];
    for (let i = commits.indexOf(first) + 1; i <= commits.indexOf(last); i++) {
      const c = commits[i];
      // The round committed as version v was computed on version v - 1.
      const compute = busiest.get(c.version - 1);
      if (compute === undefined) continue;
      overheads.push(c.at - commits[i - 1].at - compute);
      roundMs.push(c.roundMs);
      if (process.env.SCALE_DEBUG) log(`round ${c.version}: ${c.roundMs.toFixed(1)} ms open→close, ${(c.at - commits[i - 1].at).toFixed(1)} ms commit→commit, busiest compute ${compute.toFixed(1)} ms`);
    }

    const offered = profiles.reduce((a, p) => a + p.speed, 0);
    const fastest = Math.max(...profiles.map((p) => p.speed));
    const committed = samples / span;
    const row = {
      row: plan.key,
      link: link.name,
      workers,
      speeds: plan.speeds,
      churn: plan.churn ? { fraction: plan.churn.fraction, every_s: plan.churn.everyMs / 1000 } : null,
      offered_sps: offered,
      committed_sps: round(committed, 0),
      efficiency: round(committed / offered, 3),
      speedup: round(committed / fastest, 2),
      rounds_per_sec: round(rounds / span, 2),
      p50_round_ms: round(quantile(roundMs, 0.5), 1),
      p50_overhead_ms: round(quantile(overheads, 0.5), 1),
      p95_overhead_ms: round(quantile(overheads, 0.95), 1),
      bytes_per_example_up: round((last.bytesIn - first.bytesIn) / samples, 0),
      bytes_per_example_down: round((last.bytesOut - first.bytesOut) / samples, 0),
      coordinator_cpu: round((cpu.user + cpu.system) / 1e6 / cpuWall, 2),
      rss_mb: round(rss / 2 ** 20, 0),
      simulator_cpu: round(stats.reduce((a, s) => a + s.cpu, 0), 2),
      simulator_timer_lag_p95_ms: round(Math.max(...stats.map((s) => s.timerLagP95)), 1),
      late_results: counters.late,
      rejected_results: counters.rejected,
      rounds_timed_out: counters.roundsTimedOut,
      workers_replaced: stats.reduce((a, s) => a + s.replaced, 0),
      stale_tasks: stats.reduce((a, s) => a + s.stale, 0),
      target_round_ms: targetRoundMs,
      window_s: round(span, 1),
      spec,
    };
    log(
      `${plan.key.padStart(8)} ${link.name.padEnd(8)} offered ${offered} committed ${row.committed_sps} eff ${row.efficiency} speed-up ${row.speedup} ` +
        `rounds/s ${row.rounds_per_sec} overhead p50 ${row.p50_overhead_ms} p95 ${row.p95_overhead_ms} ms, coordinator cpu ${row.coordinator_cpu} rss ${row.rss_mb} MB, simulator cpu ${row.simulator_cpu} lag p95 ${row.simulator_timer_lag_p95_ms} ms`,
    );
    return row;
  } finally {
    // A stopped simulator exits by itself (writing its profile, when asked for one); others are ended.
    await Promise.all(sims.map((s) => (s.child.exitCode === null ? Promise.race([new Promise((r) => s.child.once('exit', r)), sleep(5000)]) : undefined)));
    for (const s of sims) if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await app.close();
  }
}

type Row = Awaited<ReturnType<typeof measureRow>>;

export async function run(log: (m: string) => void, opts: ScaleOptions = {}): Promise<Record<string, unknown>> {
  const keys = (opts.rows ?? ROWS.map((r) => r.key).join(',')).split(',').map((k) => k.trim()).filter(Boolean);
  const plans = keys.map((k) => {
    const p = ROWS.find((r) => r.key === k);
    if (!p) throw new Error(`unknown row "${k}"; rows: ${ROWS.map((r) => r.key).join(', ')}`);
    return p;
  });
  const linkNames = (opts.links ?? LINKS.map((l) => l.name).join(',')).split(',').map((k) => k.trim()).filter(Boolean);
  const links = linkNames.map((n) => {
    const l = LINKS.find((x) => x.name === n);
    if (!l) throw new Error(`unknown link "${n}"; links: ${LINKS.map((x) => x.name).join(', ')}`);
    return l;
  });
  const o = {
    seconds: Number(opts.seconds ?? 12),
    warmup: Number(opts.warmup ?? 3),
    children: Number(opts.children ?? 1),
    targetRoundMs: Number(opts['target-round-ms'] ?? DEFAULT_SYNC.targetRoundMs),
    dataDir: mkdtempSync(join(tmpdir(), 'crowdtrain-bench-scale-')),
  };
  log(`${plans.length} row(s) × ${links.length} link(s): ${o.warmup} s warm-up, ${o.seconds} s window, ${o.children} simulator process(es), targetRoundMs ${o.targetRoundMs}, ${cpus().length} cores`);
  const fresh: Row[] = [];
  for (const link of links) for (const plan of plans) fresh.push(await measureRow(plan, link, o, log));

  // Read-modify-write: rows not measured now, and other keys (time_to_target), are kept.
  const file = join(root, 'bench', 'results', 'scale.json');
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const byKey = new Map<string, Record<string, unknown>>();
  for (const r of (previous.rows as Record<string, unknown>[] | undefined) ?? []) byKey.set(`${r.link}|${r.row}`, r);
  for (const r of fresh) byKey.set(`${r.link}|${r.row}`, r);
  const order = (r: Record<string, unknown>) => {
    const l = LINKS.findIndex((x) => x.name === r.link);
    const p = ROWS.findIndex((x) => x.key === r.row);
    return (l < 0 ? LINKS.length : l) * 100 + (p < 0 ? ROWS.length : p);
  };
  const rows = [...byKey.values()].sort((a, b) => order(a) - order(b));
  return { ...previous, links: Object.fromEntries(LINKS.map((l) => [l.name, l.describe])), cores: cpus().length, rows };
}
