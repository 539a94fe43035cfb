// A contributing worker: connects to the coordinator, keeps the run's parameters, computes each
// task's gradient with its backend and sends it back, within the work cap the person set.
// No DOM here: the contributor page drives it, and so do headless workers and Node tests.
import { io, type Socket } from 'socket.io-client';
import { ChunkAssembler, chunkPieces } from '../../shared/chunks.ts';
import { CHUNK_BYTES, PROTOCOL_VERSION, WORKER_NAMESPACE, type Backend, type Placement, type RefusalData, type RunInfo, type RunUpdate, type ServerToWorkerEvents, type StageTask, type TaskMeta, type TaskResult, type WorkerHello, type WorkerToServerEvents } from '../../shared/protocol.ts';
import { codingOf, encodeUpdate, ErrorFeedback, type UpdateCoding } from '../../shared/update-codec.ts';
import { describeModel } from '../../shared/layers/sequence.ts';
import { partitionLayers } from '../../shared/stage.ts';
import type { StageBackend, StageSetup } from './stage-backend.ts';
import { StageTaskRunner } from './stage-task.ts';
import { float32From, toArrayBuffer, uint32From } from '../../shared/binary.ts';
import { sanitizeNickname } from '../../shared/nickname.ts';
import type { GradientBackend } from './backend.ts';
import { ShardStore, type ShardCache } from './shard-store.ts';
import { taskExamples } from '../../shared/epoch-order.ts';
import { ParamSync } from './param-sync.ts';
import { taskGradient } from './task-gradient.ts';
import { taskInnerSteps } from './task-local.ts';

export type WorkerState = 'idle' | 'connecting' | 'warming-up' | 'training' | 'paused' | 'reconnecting' | 'stopped' | 'refused';

export interface WorkerStats {
  workerId: string | null;
  state: WorkerState;
  backend: Backend;
  /** Samples/s of this worker over its recent tasks, cap and idle time included. */
  samplesPerSec: number;
  /** Examples whose gradients the coordinator accepted from this tab. */
  contributedSamples: number;
  tasksDone: number;
  tasksRejected: number;
  run: RunUpdate | null;
  /** The run this worker serves now (the coordinator may move it between runs at round boundaries). */
  serving: { runId: string; name: string; stages: number } | null;
  /** Pipeline runs: the layers of the replica this worker holds in the current round (null: none). */
  placement: Placement | null;
  /** Bytes the backend allocated for the model or the stage. */
  allocatedBytes: number;
  /** The last error or refusal, for the page to show. */
  message: string | null;
  /** What the worker is doing now and since when (its clock's ms): a tab that seems stuck says where. */
  activity: { what: string; since: number } | null;
}

export interface WorkerClientOptions {
  /** Coordinator origin; '' for the page's own. */
  url?: string;
  /** Makes the backend for a run's model (warm-up included). */
  makeBackend: (run: RunInfo) => Promise<GradientBackend>;
  /** Makes the backend for one pipeline stage of a run's model (pipeline runs only). */
  makeStageBackend?: (run: RunInfo, stage: StageSetup) => Promise<StageBackend>;
  backend: Backend;
  hello?: Partial<Omit<WorkerHello, 'protocol' | 'backend'>>;
  /** Fraction of the time this worker may compute, in (0, 1]. */
  cap?: number;
  /** Keeps shards between runs and restarts (Node workers: a cache directory). */
  shardCache?: ShardCache;
  /** Protocol version to announce (tests use a wrong one). */
  protocol?: number;
  onChange?: (stats: WorkerStats) => void;
  /** Time for the work cap and the speed shown; default the page's own timers (realTime). */
  clock?: WorkerClock;
}

/**
 * The worker's time: what it times its tasks with and how it rests between them under the work
 * cap. Tests pass one that skips the rests, then read the duty cycle from its `now`.
 */
export interface WorkerClock {
  /** Milliseconds, from any origin. */
  now(): number;
  /** Resolves once `ms` have passed on this clock. */
  sleep(ms: number): Promise<void>;
}

/** The real timers, in the browser and in Node alike. */
export const realTime: WorkerClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

type ClientSocket = Socket<ServerToWorkerEvents, WorkerToServerEvents>;

/** Datasets whose shards a worker keeps in memory at once (the runs it is moved between). */
const MAX_DATASETS_HELD = 3;

const marked = new Set<string>();
/**
 * A performance mark `crowdtrain:<step>` the first time this worker reaches a step of joining
 * (welcome, backend-ready, first-task, first-computed, first-accepted): the join benchmark reads
 * them, and so can anyone in the browser's performance panel.
 */
export function markJoin(step: string): void {
  if (marked.has(step)) return;
  marked.add(step);
  globalThis.performance?.mark?.(`crowdtrain:${step}`);
}

export class WorkerClient {
  private socket?: ClientSocket;
  private backend?: GradientBackend;
  private backendFor?: string;
  private shards?: ShardStore;
  /**
   * Shard stores by dataset (its name and shard hashes), newest last: a worker the coordinator
   * moves between runs (grid shares) keeps each dataset's shards and never fetches them twice.
   */
  private readonly shardStores = new Map<string, ShardStore>();
  private run?: RunInfo;
  /** The run's parameters as the coordinator sends them: a snapshot over HTTP, then deltas. */
  private readonly params: ParamSync;
  /** Pieces of a binary too large for one message. */
  private readonly chunks = new ChunkAssembler({ maxBytes: 2 ** 31 - 1, maxStreams: 4 });
  /** What the lossy coding of this run's results has not sent yet (error feedback). */
  private feedback?: { coding: UpdateCoding; ef: ErrorFeedback };
  /** Pipeline runs: the stage slice of the parameters that came with the last task. */
  private stageParams?: { version: number; offset: number; data: Float32Array };
  private stageBackends = new Map<string, StageBackend>();
  private stageRunner?: StageTaskRunner;
  private queue: { meta: TaskMeta; indices: Uint32Array }[] = [];
  private busy = false;
  private cap: number;
  private readonly clock: WorkerClock;
  private paused = false;
  private rate = { samples: 0, ms: 0 };
  /** Sanitised as the coordinator will store it; undefined: none. */
  private nickname: string | undefined;
  readonly stats: WorkerStats;

  constructor(private readonly opts: WorkerClientOptions) {
    this.cap = opts.cap ?? 1;
    this.clock = opts.clock ?? realTime;
    this.nickname = sanitizeNickname(opts.hello?.nickname) ?? undefined;
    this.stats = { workerId: null, state: 'idle', backend: opts.backend, samplesPerSec: 0, contributedSamples: 0, tasksDone: 0, tasksRejected: 0, run: null, serving: null, placement: null, allocatedBytes: 0, message: null, activity: null };
    this.params = new ParamSync({
      fetchSnapshot: async (snap) => {
        const res = await fetch(`${this.opts.url ?? ''}${snap.url}`);
        if (!res.ok) throw new Error(`snapshot ${snap.url}: HTTP ${res.status} ${await res.text().catch(() => '')}`);
        return new Uint8Array(await res.arrayBuffer());
      },
      resync: (reason) => {
        this.set({ message: `parameters out of step (${reason}); asking for a snapshot` });
        if (this.run && this.socket?.connected) this.socket.emit('ready', { runId: this.run.id, version: Math.max(0, this.params.version), resync: true });
      },
    });
  }

  private set(patch: Partial<WorkerStats>): void {
    // A refusal's reason (a ban, a protocol mismatch) stays shown: a task's late failure does not replace it.
    if (this.stats.state === 'refused' && patch.state === undefined && patch.message !== undefined) patch = { ...patch, message: this.stats.message };
    Object.assign(this.stats, patch);
    this.opts.onChange?.({ ...this.stats });
  }

  private doing(what: string): void {
    this.set({ activity: { what, since: this.clock.now() } });
  }

  /** Connects and starts contributing; reconnects by itself until stop(). */
  start(): void {
    if (this.socket) return;
    this.set({ state: 'connecting', message: null });
    // A function: each reconnection's hello carries the nickname of that moment.
    const hello = (cb: (auth: object) => void) => {
      const { nickname: _given, ...rest } = this.opts.hello ?? {};
      cb({ protocol: this.opts.protocol ?? PROTOCOL_VERSION, backend: this.opts.backend, ...rest, ...(this.nickname !== undefined ? { nickname: this.nickname } : {}) });
    };
    const socket: ClientSocket = io(`${this.opts.url ?? ''}${WORKER_NAMESPACE}`, { auth: hello, transports: ['websocket'], reconnectionDelayMax: 5000, forceNew: true });
    this.socket = socket;
    socket.on('connect_error', (err) => {
      const data = (err as Error & { data?: RefusalData }).data;
      if (data?.code) {
        // Refused by the coordinator: retrying would be refused again.
        this.set({ state: 'refused', message: data.message });
        socket.disconnect();
        return;
      }
      this.set({ state: 'reconnecting', message: `cannot reach the coordinator: ${err.message}` });
    });
    socket.on('disconnect', (reason) => {
      if (this.stats.state === 'stopped' || this.stats.state === 'refused') return;
      this.queue = [];
      this.set({ state: 'reconnecting', message: `connection lost (${reason})` });
      if (reason === 'io server disconnect') socket.connect();
    });
    socket.on('banned', (b) => {
      // The coordinator found this worker's results wrong too often: stay refused, do not reconnect.
      this.queue = [];
      this.set({ state: 'refused', message: `banned from run ${b.runId}: ${b.reason}` });
      socket.disconnect();
    });
    socket.on('welcome', (w) => {
      markJoin('welcome');
      // A new connection is a new worker to the coordinator: it starts from a snapshot, with a fresh inner optimizer.
      this.params.clear();
      this.feedback = undefined;
      this.backend?.resetOptimizer();
      this.set({ workerId: w.workerId, message: null });
      if (w.run) void this.useRun(w.run);
    });
    socket.on('run', (run) => {
      if (run) void this.useRun(run);
    });
    socket.on('chunk', (meta, data) => {
      try {
        this.chunks.add(meta, data);
      } catch (err) {
        this.set({ message: `bad chunk from the coordinator: ${(err as Error).message}` });
      }
    });
    socket.on('params', (meta, data) => {
      let bytes: Uint8Array;
      try {
        bytes = meta.chunks !== undefined ? this.chunks.take(meta.chunks) : new Uint8Array(data instanceof ArrayBuffer ? data : (data as Uint8Array));
      } catch (err) {
        this.set({ message: `parameters lost in transit: ${(err as Error).message}` });
        return;
      }
      if (meta.runId !== this.run?.id) return;
      if (meta.offset !== undefined) {
        this.stageParams = { version: meta.version, offset: meta.offset, data: float32From(bytes, true) };
        return;
      }
      void this.params.receive(meta, bytes);
    });
    socket.on('task', (meta, indices) => {
      markJoin('first-task');
      if (meta.stage) {
        void this.startStage(meta as TaskMeta & { stage: StageTask }, uint32From(indices, true));
        return;
      }
      let examples: Uint32Array;
      try {
        examples = taskExamples(meta, uint32From(indices, true));
      } catch (err) {
        this.set({ message: `task ${meta.taskId} refused: ${(err as Error).message}` });
        return;
      }
      this.queue.push({ meta, indices: examples });
      void this.drain();
    });
    socket.on('relay', (meta, data) => {
      if (this.stageRunner?.taskId === meta.taskId) this.stageRunner.receive(meta, float32From(data, true));
    });
    socket.on('cancel', ({ taskId, reason }) => {
      if (this.stageRunner?.taskId !== taskId) return;
      this.stageRunner.cancel();
      this.stageRunner = undefined;
      this.set({ placement: null, message: `round abandoned: ${reason}` });
      this.announceReady();
    });
    socket.on('run-update', (u) => this.set({ run: u }));
  }

  private async useRun(run: RunInfo): Promise<void> {
    const same = this.run?.id === run.id;
    this.run = run;
    this.set({ serving: { runId: run.id, name: run.name, stages: run.spec.parallelism.stages }, run: { runId: run.id, state: run.state, version: run.version, loss: this.stats.run?.loss ?? null, accuracy: this.stats.run?.accuracy ?? null, workers: this.stats.run?.workers ?? 0, samplesPerSec: this.stats.run?.samplesPerSec ?? 0, samples: this.stats.run?.samples ?? 0 } });
    if (!same) {
      this.params.clear();
      this.feedback = undefined;
      this.shards = this.shardStoreFor(run);
      this.backend?.resetOptimizer(); // a local-mode inner optimizer's state is one run's
    }
    // The backend is the model's (and the batch it is sized for), not the run's: moved between
    // runs of one model (a sweep's trials), the worker computes at once, without a new warm-up.
    const key = JSON.stringify([run.layers, run.inputShape, run.spec.batchPerTask, run.spec.globalBatch ?? null]);
    if (this.backendFor !== key) {
      this.set({ state: 'warming-up' });
      this.backend?.dispose();
      this.backend = undefined;
      const backend = await this.opts.makeBackend(run); // compiles every pipeline before any task
      if (this.run?.id !== run.id) return backend.dispose();
      this.backend = backend;
      this.backendFor = key;
      markJoin('backend-ready');
    }
    this.announceReady();
  }

  /** The shard store of a run's dataset, kept from an earlier run on it (at most a few datasets held). */
  private shardStoreFor(run: RunInfo): ShardStore {
    const key = `${run.dataset.name}:${run.dataset.shards.map((s) => s.sha256).join(',')}`;
    let store = this.shardStores.get(key);
    if (store) this.shardStores.delete(key);
    else store = new ShardStore(run.dataset.shards, this.opts.url ?? '', this.opts.shardCache);
    this.shardStores.set(key, store);
    for (const old of this.shardStores.keys()) if (this.shardStores.size > MAX_DATASETS_HELD) this.shardStores.delete(old);
    return store;
  }

  /** Asks for the next task; `dropped`: the id of a task given up without a result. */
  private announceReady(dropped?: string): void {
    if (!this.socket?.connected || !this.run || !this.backend || this.paused) return;
    if (this.run.state !== 'running') {
      this.set({ state: 'training', message: `run ${this.run.name} is ${this.run.state}` });
      return;
    }
    this.set({ state: 'training', activity: { what: 'waiting for a task', since: this.clock.now() } });
    this.socket.emit('ready', { runId: this.run.id, version: Math.max(0, this.params.version), ...(dropped !== undefined ? { dropped } : {}) });
  }

  /** A pipeline task: this worker's stage of one replica for this round. */
  private async startStage(meta: TaskMeta & { stage: StageTask }, data: Uint32Array): Promise<void> {
    const socket = this.socket;
    const run = this.run;
    if (!socket || !run || !this.shards || !this.opts.makeStageBackend) return;
    this.stageRunner?.cancel();
    const st = meta.stage;
    const model = describeModel(run.layers, run.inputShape);
    const plan = partitionLayers(model, st.stages)[st.index];
    if (plan.firstLayer !== st.firstLayer || plan.endLayer !== st.endLayer || plan.paramOffset !== st.paramOffset || plan.paramCount !== st.paramCount) {
      this.set({ message: `stage ${st.index} of ${st.stages} does not match this worker's partition of the model` });
      return;
    }
    const key = `${run.id}:${st.stages}:${st.index}`;
    let backend = this.stageBackends.get(key);
    if (!backend) {
      for (const b of this.stageBackends.values()) b.dispose(); // hold one stage at a time
      this.stageBackends.clear();
      // The largest micro-batch any round of this run can send (replica batches change with D).
      const maxBatch = Math.max(run.spec.batchPerTask, run.spec.globalBatch ?? 0);
      const maxMicroBatch = Math.max(...st.microBatches, Math.ceil(maxBatch / run.spec.parallelism.microBatches));
      const maxMicroBatches = Math.max(st.microBatches.length, run.spec.parallelism.microBatches);
      backend = await this.opts.makeStageBackend(run, { model, plan, maxMicroBatch, maxMicroBatches });
      this.stageBackends.set(key, backend);
    }
    if (!this.stageParams || this.stageParams.version !== meta.version || this.stageParams.offset !== st.paramOffset) {
      this.set({ message: 'stage task without its parameters; waiting for the next round' });
      return;
    }
    backend.setParams(this.stageParams.data);
    const shards = this.shards;
    const runner = new StageTaskRunner(meta, data, backend, {
      relay: (m, values) => socket.emit('relay', m, toArrayBuffer(values)),
      batch: (indices) => shards.batch(indices),
    });
    this.stageRunner = runner;
    this.set({ state: 'training', placement: { replica: st.replica, stage: st.index, stages: st.stages, firstLayer: st.firstLayer, endLayer: st.endLayer }, allocatedBytes: backend.allocatedBytes });
    runner.start();
    let outcome;
    try {
      outcome = await runner.done;
    } catch (err) {
      this.set({ message: `stage task failed: ${(err as Error).message}` });
      return;
    }
    if (this.stageRunner !== runner) return;
    this.stageRunner = undefined;
    await this.report(
      socket,
      { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: outcome.loss, computeMs: outcome.computeMs, allocatedBytes: backend.allocatedBytes },
      new Uint8Array(outcome.grads.buffer, outcome.grads.byteOffset, outcome.grads.byteLength),
      meta.leaseMs,
      outcome.computeMs,
    );
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length) {
        const task = this.queue.shift()!;
        try {
          await this.compute(task);
        } catch (err) {
          // A shard that could not be fetched, a backend failure: this task is lost; the worker
          // says so as it asks for the next, and the coordinator hands its examples on at once.
          this.set({ message: `task failed: ${(err as Error).message}` });
          this.announceReady(task.meta.taskId);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async compute({ meta, indices }: { meta: TaskMeta; indices: Uint32Array }): Promise<void> {
    const { socket, backend, shards, run } = this;
    if (!socket || !backend || !shards || !run) return;
    // Params@version precede their tasks on the socket (a snapshot may still be on its way over HTTP).
    this.doing(`task ${meta.taskId}: waiting for parameters v${meta.version}`);
    await this.params.settled();
    const replica = this.params.current;
    // A task of a run this worker no longer serves, or on a version it does not hold, is stale.
    if (meta.runId !== this.run?.id || !replica || replica.version !== meta.version) {
      // A mismatch means a stale task.
      this.announceReady(meta.taskId);
      return;
    }
    const started = this.clock.now();
    const wanted = () => this.backend === backend;
    // Says which of fetching examples and computing the task is at (a stalled tab shows where).
    const source = {
      batch: async (part: Uint32Array) => {
        this.doing(`task ${meta.taskId}: fetching ${part.length} examples`);
        const b = await shards.batch(part);
        this.doing(`task ${meta.taskId}: computing on ${this.stats.backend}`);
        return b;
      },
    };
    // stop() may come while a batch is fetched: then the task is simply dropped.
    let loss: number;
    let update: Float32Array;
    if (meta.local) {
      // A copy: the pseudo-gradient is taken against these, whatever arrives while the steps run.
      const out = await taskInnerSteps(backend, replica.params.slice(), source, indices, meta.local.steps, meta.local.batch, run.spec.optimizer, wanted);
      if (!out) return;
      ({ loss, pseudo: update } = out);
    } else {
      backend.setParams(replica.params);
      const out = await taskGradient(backend, source, indices, wanted);
      if (!out) return;
      ({ loss, grads: update } = out);
    }
    if (this.socket !== socket) return;
    markJoin('first-computed');
    const computeMs = this.clock.now() - started;
    const { coding, bytes } = this.encode(run, update);
    await this.report(socket, { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: indices.length, loss, computeMs, coding: coding.kind }, bytes, meta.leaseMs, computeMs);
  }

  /** Codes a result as the run's compression.up asks, with error feedback for the lossy codings. */
  private encode(run: RunInfo, update: Float32Array): { coding: UpdateCoding; bytes: Uint8Array } {
    const coding = codingOf(run.spec.compression, 'up');
    if (coding.kind === 'none') return { coding, bytes: new Uint8Array(update.buffer, update.byteOffset, update.byteLength) };
    if (!this.feedback || this.feedback.coding.kind !== coding.kind || this.feedback.ef.residual.length !== update.length) this.feedback = { coding, ef: new ErrorFeedback(update.length) };
    return { coding, bytes: encodeUpdate(coding, update, this.feedback.ef) };
  }

  /**
   * Sends a task's result and waits for the coordinator's answer, rests as the work cap asks,
   * updates what the page shows, and asks for the next task.
   */
  private async report(socket: ClientSocket, result: TaskResult, bytes: Uint8Array, leaseMs: number, computeMs: number): Promise<void> {
    const sent = this.clock.now();
    this.doing(`task ${result.taskId}: sending its result`);
    let body = toArrayBuffer(bytes);
    if (bytes.byteLength > CHUNK_BYTES) {
      // Past one message: the pieces go first, then the result that names them.
      const stream = `${result.taskId}-${Math.floor(Math.random() * 1e9).toString(36)}`.slice(0, 64);
      for (const piece of chunkPieces(bytes, stream)) socket.emit('chunk', piece.meta, toArrayBuffer(piece.data));
      result = { ...result, chunks: stream };
      body = new ArrayBuffer(0);
    }
    const ack = await new Promise<{ ok: boolean; error?: string }>((resolve) => {
      socket.timeout(leaseMs + 10_000).emit('result', result, body, (err: Error | null, a?: { ok: boolean; error?: string }) =>
        resolve(err ? { ok: false, error: 'no answer from the coordinator' } : a!),
      );
    });
    if (ack.ok) markJoin('first-accepted');
    // Work cap: rest so that computing takes at most `cap` of the time on the worker's clock.
    const rest = this.cap < 1 ? (computeMs * (1 - this.cap)) / this.cap : 0;
    if (rest > 0) {
      this.doing(`resting ${Math.round(rest)} ms (work cap)`);
      await this.clock.sleep(rest);
    }
    this.rate.samples = this.rate.samples * 0.8 + result.samples;
    this.rate.ms = this.rate.ms * 0.8 + computeMs + (this.clock.now() - sent);
    this.set({
      samplesPerSec: (this.rate.samples * 1000) / Math.max(1, this.rate.ms),
      contributedSamples: this.stats.contributedSamples + (ack.ok ? result.samples : 0),
      tasksDone: this.stats.tasksDone + (ack.ok ? 1 : 0),
      tasksRejected: this.stats.tasksRejected + (ack.ok ? 0 : 1),
      message: ack.ok ? null : `last result not used: ${ack.error}`,
    });
    this.sendStatus();
    this.announceReady();
  }

  private sendStatus(samplesPerSec = this.stats.samplesPerSec): void {
    this.socket?.emit('status', { paused: this.paused, cap: this.cap, samplesPerSec, ...(this.nickname !== undefined ? { nickname: this.nickname } : {}) });
  }

  /**
   * Renames this worker on the leaderboard (from its next status on, and in the hello of any
   * reconnection). Returns the nickname as the coordinator will show it: sanitised, or null for none.
   */
  setNickname(raw: string): string | null {
    const nickname = sanitizeNickname(raw);
    this.nickname = nickname ?? undefined;
    // An empty string clears it on the coordinator; omitting the field would keep the old one.
    this.socket?.emit('status', { paused: this.paused, cap: this.cap, samplesPerSec: this.stats.samplesPerSec, nickname: nickname ?? '' });
    return nickname;
  }

  /** Caps the fraction of time spent computing, in (0, 1]. */
  setCap(cap: number): void {
    this.cap = Math.min(1, Math.max(0.05, cap));
    this.sendStatus();
  }

  pause(): void {
    this.paused = true;
    this.set({ state: 'paused' });
    this.sendStatus(0);
  }

  resume(): void {
    this.paused = false;
    this.sendStatus();
    this.announceReady();
  }

  /** Leaves the run: the coordinator re-queues this worker's open task. */
  stop(): void {
    this.set({ state: 'stopped' });
    this.socket?.disconnect();
    this.socket = undefined;
    this.backend?.dispose();
    this.backend = undefined;
    this.backendFor = undefined;
    this.stageRunner?.cancel();
    this.stageRunner = undefined;
    for (const b of this.stageBackends.values()) b.dispose();
    this.stageBackends.clear();
    this.run = undefined;
  }
}
