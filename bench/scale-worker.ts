// Simulated workers for the scale benchmark (bench/scale.node.ts forks this file): many workers
// in one process, each speaking the real protocol over its own socket.io-client connection, with
// a profile (examples/s, link bandwidth and latency) and churn. A worker computes nothing: it
// waits examples/speed and answers with one fixed, valid gradient, so the bench measures the
// coordinator and the schedule. Nothing here belongs to the real worker (client/worker/ is that).
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, WORKER_NAMESPACE, type ParamsMeta, type ResultAck, type ServerToWorkerEvents, type TaskMeta, type TaskResult, type Welcome, type WorkerToServerEvents } from '../shared/protocol.ts';

/** One simulated worker's profile. */
export interface SimProfile {
  /** Examples per second it computes. */
  speed: number;
  /** Bits per second each way (0: no added delay) and one-way latency, ms. */
  downBps: number;
  upBps: number;
  latencyMs: number;
}

export type ToWorkers =
  | { type: 'start'; url: string; profiles: SimProfile[]; churn: { fraction: number; everyMs: number } | null; seed: number }
  /** The measurement window starts: forget what came before. */
  | { type: 'mark' }
  | { type: 'stop' };

export interface WorkerStats {
  /** Per round version, the compute of its busiest worker (Σ of its folded tasks' compute), ms. */
  busiestMs: [number, number][];
  /** This process's CPU time / wall time since the mark. */
  cpu: number;
  results: number;
  rejected: number;
  /** Workers replaced by churn since the mark. */
  replaced: number;
  /** Tasks dropped because they named parameters the worker did not hold (its lease then runs out). */
  stale: number;
  /** How late this process's timers fired, p95 ms since the mark (a busy simulator shows here). */
  timerLagP95: number;
}

export type FromWorkers = { type: 'connected'; workers: number } | { type: 'stats'; stats: WorkerStats } | { type: 'error'; message: string };

type WorkerSocket = Socket<ServerToWorkerEvents, WorkerToServerEvents>;

const send = (m: FromWorkers) => process.send?.(m);

/**
 * A one-way link: messages are serialised at its bandwidth, then delayed by its latency, and
 * delivered in the order they were sent. One queue and one timer per link keep that order:
 * separate timers would not (Node rounds their start to the loop's millisecond).
 */
class Link {
  private freeAt = 0;
  private readonly queue: { at: number; fn: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly bps: number,
    private readonly latencyMs: number,
  ) {}

  /** Runs `fn` when a message of `bytes` has crossed the link (at once on a link with no delay). */
  carry(bytes: number, fn: () => void): void {
    if (this.bps <= 0 && this.latencyMs <= 0) return fn();
    const now = performance.now();
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (this.bps > 0 ? (bytes * 8 * 1000) / this.bps : 0);
    this.queue.push({ at: this.freeAt + this.latencyMs, fn });
    if (!this.timer) this.arm();
  }

  private arm(): void {
    const head = this.queue[0];
    this.timer = head ? setTimeout(() => this.deliver(), Math.max(0, head.at - performance.now())) : null;
  }

  private deliver(): void {
    const now = performance.now();
    // Everything due (a timer may fire a little early or late): in order.
    while (this.queue.length && this.queue[0].at <= now + 1) {
      const m = this.queue.shift()!;
      lags.push(Math.max(0, now - m.at));
      m.fn();
    }
    this.arm();
  }
}

const lags: number[] = [];
/** setTimeout that records how late it fired. */
function timer(ms: number, fn: () => void): void {
  const due = performance.now() + ms;
  setTimeout(() => {
    lags.push(Math.max(0, performance.now() - due));
    fn();
  }, ms);
}

/** Per round version, per worker: compute time of the folded tasks. */
const computeByVersion = new Map<number, Map<number, number>>();
let results = 0;
let rejected = 0;
let replaced = 0;
let stale = 0;
let gradient: Float32Array | undefined;

class SimWorker {
  private socket: WorkerSocket;
  private readonly down: Link;
  private readonly up: Link;
  private runId: string | null = null;
  private params = -1;
  private announced = false;
  private queue: TaskMeta[] = [];
  private busy = false;
  private closed = false;

  constructor(
    readonly index: number,
    readonly profile: SimProfile,
    url: string,
  ) {
    this.down = new Link(profile.downBps, profile.latencyMs);
    this.up = new Link(profile.upBps, profile.latencyMs);
    // Starts with no known speed: the coordinator probes it, as it would a new tab.
    this.socket = io(`${url}${WORKER_NAMESPACE}`, { auth: { protocol: PROTOCOL_VERSION, backend: 'cpu' }, transports: ['websocket'], forceNew: true, reconnection: false });
    this.socket.on('welcome', (w: Welcome) => this.down.carry(0, () => this.useRun(w.run)));
    this.socket.on('run', (r) => this.down.carry(0, () => this.useRun(r)));
    this.socket.on('params', (meta: ParamsMeta, data: ArrayBuffer) => {
      // A snapshot comes over HTTP (the real route, a real download), then takes its link time.
      if (meta.snapshot) {
        fetch(`${url}${meta.snapshot.url}`)
          .then((res) => (res.ok ? res.arrayBuffer() : Promise.reject(new Error(`HTTP ${res.status}`))))
          .then(
            (bytes) => this.down.carry(bytes.byteLength, () => this.gotParams(meta)),
            (err: Error) => send({ type: 'error', message: `worker ${index}: snapshot ${meta.snapshot!.url}: ${err.message}` }),
          );
        return;
      }
      this.down.carry(data.byteLength, () => this.gotParams(meta));
    });
    this.socket.on('task', (meta: TaskMeta, indices: ArrayBuffer) =>
      this.down.carry(indices.byteLength, () => {
        this.queue.push(meta);
        this.drain();
      }),
    );
    this.socket.on('connect_error', (err) => send({ type: 'error', message: `worker ${index}: ${err.message}` }));
  }

  get connected(): boolean {
    return this.socket.connected && this.params >= 0;
  }

  private useRun(run: Welcome['run']): void {
    if (!run) return;
    this.runId = run.id;
    if (!gradient || gradient.length !== run.paramCount) gradient = new Float32Array(run.paramCount).fill(1e-4);
  }

  private gotParams(meta: ParamsMeta): void {
    if (meta.runId !== this.runId) return;
    this.params = Math.max(this.params, meta.version);
    // Warmed up once it holds parameters (a real tab compiles its pipelines meanwhile).
    if (!this.announced) {
      this.announced = true;
      this.ready();
    }
  }

  private ready(): void {
    if (this.closed || !this.runId) return;
    const msg = { runId: this.runId, version: Math.max(0, this.params) };
    this.up.carry(0, () => this.socket.emit('ready', msg));
  }

  private drain(): void {
    if (this.busy || this.closed) return;
    const meta = this.queue.shift();
    if (!meta) return;
    if (meta.version !== this.params) {
      // A stale task (the real worker drops it the same way and asks again).
      stale++;
      if (process.env.SCALE_DEBUG) console.error(`[scale] worker ${this.index}: task ${meta.taskId} for version ${meta.version}, holds ${this.params}`);
      this.ready();
      return this.drain();
    }
    this.busy = true;
    const computeMs = (meta.count * 1000) / this.profile.speed;
    timer(computeMs, () => this.report(meta, computeMs));
  }

  private report(meta: TaskMeta, computeMs: number): void {
    const g = gradient!;
    const result: TaskResult = { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: 2.3, computeMs };
    this.up.carry(g.byteLength, () => {
      if (this.closed) return;
      this.socket.timeout(meta.leaseMs + 10_000).emit('result', result, g.buffer as ArrayBuffer, (err: Error | null, ack?: ResultAck) =>
        this.down.carry(0, () => {
          if (!err && ack?.ok) {
            results++;
            let byWorker = computeByVersion.get(meta.version);
            if (!byWorker) computeByVersion.set(meta.version, (byWorker = new Map()));
            byWorker.set(this.index, (byWorker.get(this.index) ?? 0) + computeMs);
          } else rejected++;
          this.busy = false;
          // As the real worker: the next queued task, else ask for one.
          if (this.queue.length) this.drain();
          else this.ready();
        }),
      );
    });
  }

  close(): void {
    this.closed = true;
    this.socket.disconnect();
  }
}

/** A small seeded generator, so that churn picks the same workers on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let workers: SimWorker[] = [];
let nextIndex = 0;
let markCpu = process.cpuUsage();
let markAt = performance.now();

function start(m: Extract<ToWorkers, { type: 'start' }>): void {
  workers = m.profiles.map((p) => new SimWorker(nextIndex++, p, m.url));
  const poll = setInterval(() => {
    const n = workers.filter((w) => w.connected).length;
    if (n === workers.length) {
      clearInterval(poll);
      send({ type: 'connected', workers: n });
    }
  }, 20);
  if (m.churn && m.churn.fraction > 0) {
    const { fraction, everyMs } = m.churn;
    const rand = mulberry32(m.seed);
    // Every everyMs, a fraction of the workers leave and as many new ones join with their profiles.
    setInterval(() => {
      const k = Math.max(1, Math.round(fraction * workers.length));
      for (let i = 0; i < k; i++) {
        const j = Math.floor(rand() * workers.length);
        const gone = workers[j];
        gone.close();
        workers[j] = new SimWorker(nextIndex++, gone.profile, m.url);
        replaced++;
      }
    }, everyMs).unref();
  }
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function stats(): WorkerStats {
  const cpu = process.cpuUsage(markCpu);
  const busiestMs: [number, number][] = [];
  for (const [version, byWorker] of computeByVersion) busiestMs.push([version, Math.max(...byWorker.values())]);
  return { busiestMs, cpu: (cpu.user + cpu.system) / 1000 / (performance.now() - markAt), results, rejected, replaced, stale, timerLagP95: quantile(lags, 0.95) };
}

process.on('message', (m: ToWorkers) => {
  if (m.type === 'start') start(m);
  else if (m.type === 'mark') {
    // computeByVersion is kept: a round open at the mark has tasks from before it.
    lags.length = 0;
    results = rejected = replaced = stale = 0;
    markCpu = process.cpuUsage();
    markAt = performance.now();
  } else if (m.type === 'stop') {
    const s = stats();
    for (const w of workers) w.close();
    process.send?.({ type: 'stats', stats: s } satisfies FromWorkers, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
