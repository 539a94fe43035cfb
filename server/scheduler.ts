// The scheduler: synchronous data-parallel rounds. It hands each ready worker a task under a
// lease, folds results into the round's running sum, closes the round when every result is in
// or at its deadline, steps the optimizer and broadcasts the new parameters to the run's room.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Namespace, Socket } from 'socket.io';
import type { Placement, Ready, RelayMeta, ResultAck, ServerToWorkerEvents, TaskResult, WorkerHello, WorkerStatus, WorkerToServerEvents, WorkerSocketData } from '../shared/protocol.ts';
import { float32From, isBinary, toArrayBuffer } from '../shared/binary.ts';
import { sanitizeNickname } from '../shared/nickname.ts';
import { checkGradient, RoundSum } from './aggregator.ts';
import type { EventLog } from './event-log.ts';
import { PipelineRounds } from './pipeline-rounds.ts';
import type { MetricPoint, Run } from './run.ts';

export type WorkerSocket = Socket<WorkerToServerEvents, ServerToWorkerEvents, Record<string, never>, WorkerSocketData>;
export type WorkerNamespace = Namespace<WorkerToServerEvents, ServerToWorkerEvents, Record<string, never>, WorkerSocketData>;

export interface WorkerEntry {
  id: string;
  socket: WorkerSocket;
  hello: WorkerHello;
  runId: string | null;
  /** Holds params@version and wants a task. */
  ready: boolean;
  version: number;
  /** Newest parameter version sent to this worker (directly or by broadcast). */
  paramsSent: number;
  paused: boolean;
  joinedAt: number;
  lastSeen: number;
  tasksDone: number;
  samples: number;
  rejected: number;
  samplesPerSec: number;
  /** Pipeline runs: the stage of the replica it holds now (null: a standby, or a data-parallel run). */
  placement: Placement | null;
  /** Bytes it reported allocating for its model or stage. */
  allocatedBytes?: number;
}

interface Task {
  id: string;
  workerId: string;
  indices: Uint32Array;
}

interface Round {
  version: number;
  tasks: Map<string, Task>;
  sum: RoundSum;
  openedAt: number;
  timer: NodeJS.Timeout;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
}

export interface SchedulerOptions {
  io: WorkerNamespace;
  log: FastifyBaseLogger;
  /** Test-set evaluation of a run's current parameters (synchronous, on the CPU). */
  evaluate: (run: Run) => Evaluation;
  /** Largest gradient norm accepted from a worker. */
  maxGradientNorm?: number;
  /** Observes every folded result (tests check invariants through it). */
  onFold?: (run: Run, roundVersion: number, result: TaskResult) => void;
  events?: EventLog;
  /** Labels of training examples (pipeline runs send them to the last stage). */
  labels?: (run: Run, indices: Uint32Array) => Uint32Array;
}

export type RoundClosedHook = (run: Run, ms: number, how: 'complete' | 'deadline') => void;
export type CommitHook = (run: Run, point: MetricPoint) => void;
export type WorkerHook = (w: WorkerEntry, run: Run) => void;

const room = (runId: string) => `run:${runId}`;

export class Scheduler {
  readonly runs = new Map<string, Run>();
  readonly workers = new Map<string, WorkerEntry>();
  private rounds = new Map<string, Round>();
  /** Tasks whose round closed without them: their results count as late. */
  private expired = new Set<string>();
  private lastUpdate = new Map<string, number>();
  private roundClosedHooks: RoundClosedHook[] = [];
  private commitHooks: CommitHook[] = [];
  private workerHooks: WorkerHook[] = [];
  /** Payload bytes of tensors received from and sent to workers. */
  readonly traffic = { bytesIn: 0, bytesOut: 0 };

  /** Rounds of pipeline runs (parallelism.stages > 1). */
  readonly pipeline: PipelineRounds;

  constructor(private readonly opts: SchedulerOptions) {
    this.pipeline = new PipelineRounds({
      log: opts.log,
      traffic: this.traffic,
      maxGradientNorm: opts.maxGradientNorm ?? 1e4,
      workersOf: (runId) => this.workersOf(runId),
      labels: (run, indices) => {
        if (!opts.labels) throw new Error('pipeline runs need the labels of training examples');
        return opts.labels(run, indices);
      },
      commit: (run, mean, samples, loss, openedAt) => {
        this.commit(run, mean, samples, loss, openedAt);
        this.maybeOpenRound(run);
      },
      event: (runId, kind, message, workerId) => this.event(runId, kind, message, workerId),
      roundClosed: (run, ms, how) => {
        for (const h of this.roundClosedHooks) h(run, ms, how);
      },
    });
  }

  private static pipelined(run: Run): boolean {
    return run.spec.parallelism.stages > 1;
  }

  /** Called when a round closes, with its latency. */
  onRoundClosed(fn: RoundClosedHook): void {
    this.roundClosedHooks.push(fn);
  }

  /** Called after each committed round with its metric point (the store persists them). */
  onCommit(fn: CommitHook): void {
    this.commitHooks.push(fn);
  }

  /** Called when a worker joins, leaves or finishes a task (the store keeps workers seen). */
  onWorkerChange(fn: WorkerHook): void {
    this.workerHooks.push(fn);
  }

  private workerChanged(w: WorkerEntry): void {
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (run) for (const h of this.workerHooks) h(w, run);
  }

  private event(runId: string, kind: Parameters<EventLog['append']>[1], message: string, workerId?: string): void {
    this.opts.events?.append(runId, kind, message, workerId);
  }

  addRun(run: Run): void {
    this.runs.set(run.id, run);
    for (const w of this.workers.values()) if (!w.runId) this.assign(w, run);
  }

  /** The run a new worker joins: the newest running one, else the newest of any state. */
  currentRun(): Run | undefined {
    const all = [...this.runs.values()];
    return all.filter((r) => r.state === 'running').at(-1) ?? all.at(-1);
  }

  workersOf(runId: string): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => w.runId === runId);
  }

  // ---- worker lifecycle ----------------------------------------------------------------------

  join(socket: WorkerSocket): WorkerEntry {
    const hello = { ...socket.data.hello, nickname: sanitizeNickname(socket.data.hello.nickname) ?? undefined };
    socket.data.hello = hello;
    const w: WorkerEntry = {
      id: socket.data.workerId,
      socket,
      hello,
      runId: null,
      ready: false,
      version: -1,
      paramsSent: -1,
      paused: false,
      joinedAt: Date.now(),
      lastSeen: Date.now(),
      tasksDone: 0,
      samples: 0,
      rejected: 0,
      samplesPerSec: 0,
      placement: null,
    };
    this.workers.set(w.id, w);
    const run = this.currentRun();
    socket.emit('welcome', { workerId: w.id, protocol: socket.data.hello.protocol, run: run ? run.info() : null });
    if (run) this.assign(w, run);
    this.opts.log.info({ workerId: w.id, backend: w.hello.backend, adapter: w.hello.adapter, runId: run?.id }, 'worker joined');
    return w;
  }

  private assign(w: WorkerEntry, run: Run): void {
    w.runId = run.id;
    const adapter = [w.hello.adapter.vendor, w.hello.adapter.architecture].filter(Boolean).join(' ') || 'no adapter';
    this.event(run.id, 'join', `worker ${w.id} joined (${w.hello.backend}, ${adapter})`, w.id);
    this.workerChanged(w);
    w.socket.join(room(run.id));
    w.socket.emit('run', run.info());
    this.sendParams(w, run);
  }

  private sendParams(w: WorkerEntry, run: Run): void {
    // A pipeline worker gets only its stage's slice, with each task.
    if (Scheduler.pipelined(run)) return;
    const p = run.params;
    w.paramsSent = run.version;
    this.traffic.bytesOut += p.byteLength;
    w.socket.emit('params', { runId: run.id, version: run.version, count: p.length }, toArrayBuffer(p));
  }

  leave(workerId: string, reason: string): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    this.workers.delete(workerId);
    this.opts.log.info({ workerId, runId: w.runId, reason }, 'worker left');
    if (!w.runId) return;
    this.event(w.runId, 'leave', `worker ${workerId} left (${reason})`, workerId);
    this.workerChanged(w);
    const run = this.runs.get(w.runId);
    if (run && Scheduler.pipelined(run)) {
      this.pipeline.workerLeft(run, workerId);
      this.maybeOpenRound(run);
      return;
    }
    const round = this.rounds.get(w.runId);
    if (!run || !round) return;
    for (const task of round.tasks.values()) {
      if (task.workerId !== workerId) continue;
      // Its examples go back to the front of the queue; the round does not wait for it.
      round.tasks.delete(task.id);
      run.cursor.requeue(task.indices);
    }
    if (round.tasks.size === 0) this.closeRound(run, 'complete');
  }

  ready(workerId: string, msg: Ready): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    w.lastSeen = Date.now();
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (!run || msg.runId !== run.id) return;
    // Messages to a socket arrive in order: once the newest params were sent, a task sent after
    // them is computed on them. Resend only to a worker that missed them (it joined late).
    if (w.paramsSent < run.version) this.sendParams(w, run);
    w.version = run.version;
    w.ready = !w.paused;
    this.maybeOpenRound(run);
  }

  status(workerId: string, s: WorkerStatus): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    w.lastSeen = Date.now();
    w.paused = s.paused;
    w.samplesPerSec = s.samplesPerSec;
    if (s.paused) w.ready = false;
    if (s.nickname !== undefined) {
      const nickname = sanitizeNickname(s.nickname) ?? undefined;
      if (nickname !== w.hello.nickname) {
        w.hello.nickname = nickname;
        this.workerChanged(w); // the store keeps the leaderboard's names
      }
    }
  }

  // ---- rounds ----------------------------------------------------------------------------------

  private maybeOpenRound(run: Run): void {
    if (Scheduler.pipelined(run)) return this.pipeline.maybeOpen(run);
    if (run.state !== 'running' || this.rounds.has(run.id)) return;
    const ready = this.workersOf(run.id)
      .filter((w) => w.ready && w.version === run.version)
      .sort((a, b) => a.joinedAt - b.joinedAt || a.id.localeCompare(b.id));
    if (ready.length < run.spec.sync.minWorkers || ready.length === 0) return;
    const sizes = this.taskSizes(run, ready.length);
    const round: Round = {
      version: run.version,
      tasks: new Map(),
      sum: new RoundSum(run.paramCount),
      openedAt: Date.now(),
      timer: setTimeout(() => this.closeRound(run, 'deadline'), run.spec.sync.roundDeadlineMs),
    };
    this.rounds.set(run.id, round);
    ready.forEach((w, i) => {
      if (sizes[i] === 0) return;
      const task: Task = { id: randomUUID().slice(0, 12), workerId: w.id, indices: run.cursor.next(sizes[i]) };
      round.tasks.set(task.id, task);
      w.ready = false;
      const ix = task.indices;
      w.socket.emit('task', { taskId: task.id, runId: run.id, version: run.version, leaseMs: run.spec.sync.roundDeadlineMs, count: ix.length }, toArrayBuffer(ix));
    });
  }

  /** Examples per task: globalBatch split as evenly as possible, else batchPerTask each. */
  private taskSizes(run: Run, workers: number): number[] {
    const g = run.spec.globalBatch;
    if (g === undefined) return Array(workers).fill(run.spec.batchPerTask);
    return Array.from({ length: workers }, (_, i) => Math.floor(g / workers) + (i < g % workers ? 1 : 0));
  }

  result(workerId: string, meta: TaskResult, data: unknown, ack: (a: ResultAck) => void): void {
    const w = this.workers.get(workerId);
    const reject = (error: string, counts = true) => {
      if (counts && w) w.rejected++;
      ack({ ok: false, error });
      this.opts.log.warn({ workerId, taskId: meta.taskId, runId: meta.runId, error }, 'result rejected');
      if (this.runs.has(meta.runId)) this.event(meta.runId, counts ? 'reject' : 'late', `result of worker ${workerId} not used: ${error}`, workerId);
    };
    if (!w) return reject('unknown worker');
    w.lastSeen = Date.now();
    const run = this.runs.get(meta.runId);
    if (!run) return reject(`unknown run ${meta.runId}`);
    if (Scheduler.pipelined(run) && this.pipeline.result(run, w, meta, data, ack)) {
      this.workerChanged(w);
      return;
    }
    const round = this.rounds.get(run.id);
    const task = round?.tasks.get(meta.taskId);
    if (!round || !task) {
      if (this.expired.delete(meta.taskId)) {
        run.counters.late++;
        return reject('late: the round closed before this result arrived', false);
      }
      run.counters.rejected++;
      return reject(`unknown task ${meta.taskId}`);
    }
    if (task.workerId !== workerId) {
      run.counters.rejected++;
      return reject(`task ${meta.taskId} belongs to another worker`);
    }
    if (meta.version !== round.version) {
      run.counters.rejected++;
      return reject(`result computed on version ${meta.version}, the round is at ${round.version}`);
    }
    if (meta.samples !== task.indices.length) {
      run.counters.rejected++;
      return reject(`result covers ${meta.samples} samples, the task had ${task.indices.length}`);
    }
    if (!isBinary(data)) {
      run.counters.rejected++;
      return reject('gradient must be a binary attachment');
    }
    const gradient = float32From(data);
    this.traffic.bytesIn += gradient.byteLength;
    const check = checkGradient(gradient, run.paramCount, meta.loss, this.opts.maxGradientNorm ?? 1e4);
    if (!check.ok) {
      run.counters.rejected++;
      // The task stays open: its examples are re-queued if nothing valid arrives by the deadline.
      round.tasks.delete(task.id);
      run.cursor.requeue(task.indices);
      reject(check.message!);
      if (round.tasks.size === 0) this.closeRound(run, 'complete');
      return;
    }
    round.sum.add(gradient, meta.samples, meta.loss);
    round.tasks.delete(task.id);
    run.counters.folded++;
    w.tasksDone++;
    w.samples += meta.samples;
    this.opts.onFold?.(run, round.version, meta);
    this.workerChanged(w);
    ack({ ok: true });
    if (round.tasks.size === 0) this.closeRound(run, 'complete');
  }

  private closeRound(run: Run, how: 'complete' | 'deadline'): void {
    const round = this.rounds.get(run.id);
    if (!round) return;
    clearTimeout(round.timer);
    this.rounds.delete(run.id);
    if (how === 'deadline') {
      run.counters.roundsTimedOut++;
      for (const task of round.tasks.values()) {
        this.expired.add(task.id);
        run.cursor.requeue(task.indices);
        // Its worker is still computing: it becomes ready again once its late result is answered.
      }
      this.opts.log.warn({ runId: run.id, version: round.version, missing: round.tasks.size }, 'round closed at its deadline');
      this.event(run.id, 'round-timeout', `round ${round.version + 1} closed at its ${run.spec.sync.roundDeadlineMs} ms deadline without ${round.tasks.size} result(s)`);
    }
    for (const h of this.roundClosedHooks) h(run, Date.now() - round.openedAt, how);
    if (round.sum.weight > 0 && run.state === 'running') this.commit(run, round.sum.mean(), round.sum.weight, round.sum.meanLoss(), round.openedAt);
    else if (round.sum.weight > 0) this.opts.log.info({ runId: run.id, state: run.state }, 'round discarded: run not running');
    this.maybeOpenRound(run);
  }

  /** One optimizer step with a round's mean gradient; records, checkpoints (by hook) and broadcasts. */
  private commit(run: Run, mean: Float32Array, samples: number, loss: number, openedAt: number): void {
    run.applyGradient(mean, samples);
    run.loss = loss;
    const now = Date.now();
    // Throughput over the last ten rounds (one round alone is too noisy).
    const prev = run.metrics.at(-10);
    const samplesPerSec = prev
      ? ((run.samples - prev.samples) * 1000) / Math.max(1, now - prev.time)
      : (samples * 1000) / Math.max(1, now - openedAt);
    const evalNow = run.version % run.spec.evalEvery === 0;
    if (evalNow) {
      const ev = this.opts.evaluate(run);
      run.accuracy = ev.accuracy;
    }
    const workers = this.workersOf(run.id).length;
    const point: MetricPoint = { version: run.version, time: now, loss: run.loss, accuracy: evalNow ? run.accuracy : null, samplesPerSec, workers, samples: run.samples };
    run.metrics.push(point);
    if (run.metrics.length > 20_000) run.metrics.splice(0, run.metrics.length - 20_000);
    if (!Scheduler.pipelined(run)) {
      const p = run.params;
      this.traffic.bytesOut += p.byteLength * workers;
      this.opts.io.to(room(run.id)).emit('params', { runId: run.id, version: run.version, count: p.length }, toArrayBuffer(p));
      for (const w of this.workersOf(run.id)) w.paramsSent = run.version;
    }
    for (const w of this.workersOf(run.id)) if (w.ready) w.version = run.version;
    const completed = run.checkStop();
    for (const h of this.commitHooks) h(run, point);
    if (completed) {
      this.opts.log.info({ runId: run.id, version: run.version, reason: run.stopReason }, 'run completed');
      this.event(run.id, 'completed', `run completed: ${run.stopReason}`);
      this.opts.io.to(room(run.id)).emit('run', run.info());
    }
    if (evalNow || run.state !== 'running' || now - (this.lastUpdate.get(run.id) ?? 0) > 500) {
      this.lastUpdate.set(run.id, now);
      this.opts.io.to(room(run.id)).emit('run-update', run.update(workers));
    }
  }

  /** Pauses, resumes or stops a run (admin verbs build on this). */
  setState(run: Run, state: 'running' | 'paused' | 'stopped'): void {
    if (run.state === state) return;
    this.event(run.id, 'state', `run ${run.state === 'completed' && state === 'running' ? 'restarted' : state === 'running' ? 'resumed' : state}`);
    run.state = state;
    if (state === 'running') run.stopReason = null;
    if (state !== 'running') {
      this.pipeline.stop(run);
      const round = this.rounds.get(run.id);
      if (round) {
        clearTimeout(round.timer);
        this.rounds.delete(run.id);
        for (const task of round.tasks.values()) {
          this.expired.add(task.id);
          run.cursor.requeue(task.indices);
        }
      }
    }
    this.opts.io.to(room(run.id)).emit('run', run.info());
    if (state === 'running') this.maybeOpenRound(run);
  }

  /** Forgets a run: its workers are left without one until another is created. */
  removeRun(run: Run): void {
    this.setState(run, 'stopped');
    this.runs.delete(run.id);
    for (const w of this.workersOf(run.id)) {
      w.runId = null;
      w.ready = false;
      w.socket.leave(room(run.id));
      w.socket.emit('run', null);
    }
    const next = this.currentRun();
    if (next) for (const w of this.workers.values()) if (!w.runId) this.assign(w, next);
  }

  /** Pipeline: a stage's activation or activation gradient, forwarded to its neighbour. */
  relay(workerId: string, meta: RelayMeta, data: unknown): void {
    const w = this.workers.get(workerId);
    const run = w?.runId ? this.runs.get(w.runId) : undefined;
    if (!w || !run || !Scheduler.pipelined(run)) return;
    w.lastSeen = Date.now();
    this.pipeline.relay(run, w, meta, data);
  }

  close(): void {
    this.pipeline.close();
    for (const r of this.rounds.values()) clearTimeout(r.timer);
    this.rounds.clear();
  }
}
