// The scheduler: the coordinator's runs and workers, and the one commit step every round mode
// ends with. It validates nothing itself (sockets/worker-namespace.ts does) and decides no round
// (rounds/*.ts do): it keeps the worker registry, gives each run the mode its spec asks for, and
// steps the optimizer, records the metric point, evaluates and applies the stop rule on commit.
// An evaluation is either inline (tests, the simulator: known when the commit returns) or a
// promise (the coordinator's evaluation thread): then rounds go on, and its numbers land on the
// metric point of the version it evaluated when they arrive.
// Several running runs share the workers by weight (grid-shares.ts decides which run each worker
// serves); a worker changes run only when it is free at a round boundary, and is sent the new
// run's parameters (a snapshot) before its first task there.
import type { FastifyBaseLogger } from 'fastify';
import type { Namespace, Socket } from 'socket.io';
import type { Ready, RelayMeta, ResultAck, ServerToWorkerEvents, TaskResult, WorkerHello, WorkerStatus, WorkerToServerEvents, WorkerSocketData } from '../shared/protocol.ts';
import { sanitizeNickname } from '../shared/nickname.ts';
import { systemClock, type Clock } from './clock.ts';
import type { EventLog } from './event-log.ts';
import { GridShares, shareError, type RunDemand } from './grid-shares.ts';
import { roundModeFactories, roundModeOf, type RoundHost, type RoundMode, type RoundOutcome } from './rounds/round-mode.ts';
import { codingOf } from '../shared/update-codec.ts';
import { ParamChannel } from './params/param-channel.ts';
import './rounds/sync-rounds.ts';
import './rounds/pipeline-rounds.ts';
import type { PipelineRounds } from './rounds/pipeline-rounds.ts';
import type { SyncRounds } from './rounds/sync-rounds.ts';
import type { MetricPoint, Run } from './run.ts';
import type { Traffic, WorkerPort } from './worker-port.ts';
import { SpeedEstimate, WorkerRegistry, type WorkerEntry } from './workers.ts';
import type { Ban } from './verification/bans.ts';
import { identityOf, Verification, type VerificationOptions } from './verification/verification.ts';

export type WorkerSocket = Socket<WorkerToServerEvents, ServerToWorkerEvents, Record<string, never>, WorkerSocketData>;
export type WorkerNamespace = Namespace<WorkerToServerEvents, ServerToWorkerEvents, Record<string, never>, WorkerSocketData>;
export type { WorkerEntry };

export interface Evaluation {
  /** Mean cross-entropy on the held-out examples, nats per label (per token for a language model). */
  loss: number;
  /** Test accuracy; the next-token accuracy for a language model. */
  accuracy: number;
}

export interface SchedulerOptions {
  port: WorkerPort;
  /** Payload bytes in and out; the port counts what it sends into the same object. */
  traffic?: Traffic;
  log: FastifyBaseLogger;
  clock?: Clock;
  /**
   * Held-out evaluation of a run's current parameters: an Evaluation (inline), or a promise of
   * one (off the event loop; it must copy the parameters before returning), null if skipped.
   */
  evaluate: (run: Run) => Evaluation | Promise<Evaluation | null>;
  /** Largest gradient norm accepted from a worker. */
  maxGradientNorm?: number;
  /** Observes every folded result (tests check invariants through it). */
  onFold?: (run: Run, roundVersion: number, result: TaskResult) => void;
  events?: EventLog;
  /** Labels of training examples (pipeline runs send them to the last stage). */
  labels?: (run: Run, indices: Uint32Array) => Uint32Array;
  /**
   * Spot checks and trust ({}: verification/trust.ts's DEFAULT_TRUST_POLICY). Default false, no
   * task checked: the round-logic tests and the simulator see the rounds alone; the coordinator
   * (server/app.ts) turns them on.
   */
  verification?: VerificationOptions | false;
}

export type RoundClosedHook = (run: Run, ms: number, how: 'complete' | 'deadline') => void;
export type CommitHook = (run: Run, point: MetricPoint) => void;
/** An evaluation that arrived after its commit; `point` is its version's metric point (if still held). */
export type EvaluatedHook = (run: Run, version: number, point: MetricPoint | undefined) => void;
export type WorkerHook = (w: WorkerEntry, run: Run) => void;
/** A connected worker was banned from its run (the socket namespace tells it why and closes it). */
export type BannedHook = (workerId: string, ban: Ban) => void;

export class Scheduler {
  readonly runs = new Map<string, Run>();
  readonly workers = new WorkerRegistry();
  readonly clock: Clock;
  /** Payload bytes of tensors received from and sent to workers. */
  readonly traffic: Traffic;
  private readonly modes = new Map<string, RoundMode>();
  private readonly channels = new Map<string, ParamChannel>();
  private lastUpdate = new Map<string, number>();
  private roundClosedHooks: RoundClosedHook[] = [];
  private commitHooks: CommitHook[] = [];
  private evaluatedHooks: EvaluatedHook[] = [];
  private workerHooks: WorkerHook[] = [];
  private bannedHooks: BannedHook[] = [];
  /** Spot checks, trust and bans, per run. */
  readonly verification: Verification;
  /** How running runs share the workers: each run's account of worker-seconds, and who should serve which. */
  readonly shares = new GridShares();

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.verification = new Verification(opts.verification ?? false);
    // After the round that found the worker out has done its bookkeeping: then its tasks go back.
    this.verification.onBan((ban) => queueMicrotask(() => this.banned(ban)));
    this.traffic = opts.traffic ?? { bytesIn: 0, bytesOut: 0 };
    const host: RoundHost = {
      clock: this.clock,
      port: opts.port,
      traffic: this.traffic,
      log: opts.log,
      maxGradientNorm: opts.maxGradientNorm ?? 1e4,
      verification: this.verification,
      workersOf: (runId) => this.workersOf(runId),
      channel: (run) => this.channelOf(run),
      labels: (run, indices) => {
        if (!opts.labels) throw new Error('pipeline runs need the labels of training examples');
        return opts.labels(run, indices);
      },
      commit: (run, outcome, publish) => this.commit(run, outcome, publish),
      event: (runId, kind, message, workerId) => this.event(runId, kind, message, workerId),
      roundClosed: (run, ms, how) => {
        for (const h of this.roundClosedHooks) h(run, ms, how);
      },
      workerChanged: (w) => this.workerChanged(w),
      onFold: opts.onFold,
    };
    for (const [name, make] of roundModeFactories()) this.modes.set(name, make(host));
  }

  /** The round mode a run's spec asks for. */
  modeOf(run: Run): RoundMode {
    const name = roundModeOf(run.spec);
    const mode = this.modes.get(name);
    if (!mode) throw new Error(`run ${run.id}: no round mode "${name}"`);
    return mode;
  }

  /** The run's parameter channel (made on first use, from the run's current parameters). */
  channelOf(run: Run): ParamChannel {
    let ch = this.channels.get(run.id);
    if (!ch) {
      ch = new ParamChannel(run.id, run.paramCount, codingOf(run.spec.compression, 'down'));
      ch.reset(run.params, run.version);
      this.channels.set(run.id, ch);
    }
    return ch;
  }

  /** The channel of a run by id, if the run is held (the snapshot route). */
  channelById(runId: string): ParamChannel | undefined {
    const run = this.runs.get(runId);
    return run ? this.channelOf(run) : undefined;
  }

  /** The data-parallel rounds (tests and benchmarks read their schedule). */
  get sync(): SyncRounds {
    return this.modes.get('sync') as SyncRounds;
  }

  /** The pipeline rounds (the pipeline benchmark reads their statistics). */
  get pipeline(): PipelineRounds {
    return this.modes.get('pipeline') as PipelineRounds;
  }

  /** Called when a round closes, with its latency. */
  onRoundClosed(fn: RoundClosedHook): void {
    this.roundClosedHooks.push(fn);
  }

  /** Called after each committed round with its metric point (the store persists them). */
  onCommit(fn: CommitHook): void {
    this.commitHooks.push(fn);
  }

  /** Called when an evaluation that was not ready at its commit arrives (the store updates its point). */
  onEvaluated(fn: EvaluatedHook): void {
    this.evaluatedHooks.push(fn);
  }

  /** Called when a worker joins, leaves or finishes a task (the store keeps workers seen). */
  onWorkerChange(fn: WorkerHook): void {
    this.workerHooks.push(fn);
  }

  /** Called for each connected worker a ban removes from its run. */
  onBanned(fn: BannedHook): void {
    this.bannedHooks.push(fn);
  }

  /** The ban that keeps a worker of this hello out of the run it would join, if any. */
  banFor(hello: { browserId?: string }): Ban | undefined {
    const run = this.currentRun();
    return run && hello.browserId ? this.verification.banOf(run.id, hello.browserId) : undefined;
  }

  /** Whether a connected worker is banned from its run. */
  private banOfWorker(w: WorkerEntry): Ban | undefined {
    return w.runId ? this.verification.banOf(w.runId, identityOf(w)) : undefined;
  }

  /** Removes every connected worker of the banned identity from the run; its open tasks go to others. */
  private banned(ban: Ban): void {
    for (const w of this.workersOf(ban.runId)) {
      if (identityOf(w) !== ban.key) continue;
      this.leave(w.id, `banned: ${ban.reason}`);
      for (const h of this.bannedHooks) h(w.id, ban);
    }
  }

  private workerChanged(w: WorkerEntry): void {
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (run) for (const h of this.workerHooks) h(w, run);
  }

  private event(runId: string, kind: Parameters<EventLog['append']>[1], message: string, workerId?: string): void {
    this.opts.events?.append(runId, kind, message, workerId);
  }

  addRun(run: Run): void {
    this.book();
    this.runs.set(run.id, run);
    // The port and the snapshot route count into the run's own counters.
    (this.traffic.runs ??= new Map()).set(run.id, run.traffic);
    for (const w of this.workers.values()) if (!w.runId) this.assign(w, run);
    this.rebalance();
  }

  /** The run a new worker joins: the newest running one, else the newest of any state. */
  currentRun(): Run | undefined {
    const all = [...this.runs.values()];
    return all.filter((r) => r.state === 'running').at(-1) ?? all.at(-1);
  }

  workersOf(runId: string): WorkerEntry[] {
    return this.workers.of(runId);
  }

  /** Σ of the measured speeds of a run's workers, examples/s: what the grid offers the run. */
  offeredSamplesPerSec(runId: string): number {
    let s = 0;
    for (const w of this.workers.of(runId)) if (!w.paused) s += w.speed.perSec;
    return s;
  }

  // ---- worker lifecycle ----------------------------------------------------------------------

  /** A worker connected (its hello already validated); the port can reach it by `id`. */
  join(id: string, hello: WorkerHello): WorkerEntry {
    const clean = { ...hello, nickname: sanitizeNickname(hello.nickname) ?? undefined };
    this.book();
    const w = this.workers.add(id, clean, this.clock.now());
    // The running run the shares give it; else, with none running, the newest run.
    const { runs, total } = this.demand();
    const chosen = this.shares.choose(null, this.openTo(w, runs), total);
    const run = (chosen ? this.runs.get(chosen) : undefined) ?? this.currentRun();
    this.opts.port.welcome(w.id, { workerId: w.id, protocol: hello.protocol, run: run ? run.info() : null });
    if (run) this.assign(w, run);
    this.opts.log.info({ workerId: w.id, backend: w.hello.backend, adapter: w.hello.adapter, runId: run?.id }, 'worker joined');
    return w;
  }

  private assign(w: WorkerEntry, run: Run): void {
    const previous = w.runId;
    w.runId = run.id;
    const adapter = [w.hello.adapter.vendor, w.hello.adapter.architecture].filter(Boolean).join(' ') || 'no adapter';
    const from = previous ? ` from run ${previous}` : '';
    this.event(run.id, 'join', `worker ${w.id} joined${from} (${w.hello.backend}, ${adapter})`, w.id);
    this.workerChanged(w);
    this.opts.port.assign(w.id, run.info(), previous);
    this.modeOf(run).joined(run, w);
  }

  leave(workerId: string, reason: string): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    this.book();
    this.workers.delete(workerId);
    this.opts.log.info({ workerId, runId: w.runId, reason }, 'worker left');
    if (!w.runId) return;
    this.event(w.runId, 'leave', `worker ${workerId} left (${reason})`, workerId);
    this.workerChanged(w);
    const run = this.runs.get(w.runId);
    if (run) this.modeOf(run).left(run, w);
  }

  ready(workerId: string, msg: Ready): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    w.lastSeen = this.clock.now();
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (!run || msg.runId !== run.id || this.banOfWorker(w)) return;
    // Free now: if the shares want it elsewhere and its run is between rounds, it moves.
    if (!w.paused && this.maybeMove(w, true)) return;
    this.modeOf(run).ready(run, w, msg.resync === true, msg.dropped);
  }

  /**
   * A worker over one of its message rate limits: it is held as paused, so its open tasks go to
   * other workers now and it gets none until a `status` of its own says it is not paused. An honest
   * worker never gets here (its limits are credited per task); a flooder would otherwise hold its
   * round with a task it never answers until it is cut off.
   */
  suspend(workerId: string, why: string): void {
    const w = this.workers.get(workerId);
    if (!w || w.paused) return;
    this.book();
    w.paused = true;
    w.ready = false;
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (!run) return;
    this.event(run.id, 'reject', `worker ${w.id} held as paused: ${why}`, w.id);
    this.modeOf(run).left(run, w);
  }

  status(workerId: string, s: WorkerStatus): void {
    const w = this.workers.get(workerId);
    if (!w) return;
    w.lastSeen = this.clock.now();
    if (w.paused !== s.paused) this.book(); // a paused worker counts for no run
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

  result(workerId: string, meta: TaskResult, data: unknown, ack: (a: ResultAck) => void): void {
    const w = this.workers.get(workerId);
    if (!w) return ack({ ok: false, error: 'unknown worker' });
    w.lastSeen = this.clock.now();
    const run = this.runs.get(meta.runId);
    if (!run) {
      w.rejected++;
      this.opts.log.warn({ workerId, runId: meta.runId }, 'result for an unknown run');
      return ack({ ok: false, error: `unknown run ${meta.runId}` });
    }
    const refuse = (error: string) => {
      // Told in the run the worker serves (a result naming another run must not write into that one's log).
      const own = w.runId ? this.runs.get(w.runId) : undefined;
      w.rejected++;
      if (own) own.counters.rejected++;
      this.opts.log.warn({ workerId, runId: w.runId, taskId: meta.taskId, error }, 'result rejected');
      if (own) this.event(own.id, 'reject', `result of worker ${workerId} not used: ${error}`, workerId);
      ack({ ok: false, error });
    };
    // Checked before the round looks at it: a result is for the run its worker serves, from a worker not banned from it.
    if (w.runId !== run.id && w.movedFrom === run.id) {
      // It was moved off a run that stopped while it computed: late, not wrong.
      run.counters.late++;
      return ack({ ok: false, error: `late: this worker moved to run ${w.runId ?? '(none)'} before this result arrived` });
    }
    if (w.runId !== run.id) return refuse(`this worker serves run ${w.runId ?? '(none)'}, not ${run.id}`);
    const ban = this.banOfWorker(w);
    if (ban) return refuse(`banned from this run: ${ban.reason}`);
    this.modeOf(run).result(run, w, meta, data, ack);
  }

  /** Pipeline: a stage's activation or activation gradient, forwarded to its neighbour. */
  relay(workerId: string, meta: RelayMeta, data: unknown): void {
    const w = this.workers.get(workerId);
    const run = w?.runId ? this.runs.get(w.runId) : undefined;
    if (!w || !run) return;
    w.lastSeen = this.clock.now();
    this.modeOf(run).relay(run, w, meta, data);
  }

  // ---- the commit step, shared by every round mode -------------------------------------------

  /** One optimizer step with a round's update; records, evaluates, checkpoints (by hook), publishes. */
  private commit(run: Run, outcome: RoundOutcome, publish: () => void): void {
    const { update, samples, loss, openedAt, lrFactor } = outcome;
    run.applyGradient(update, samples, lrFactor);
    run.loss = loss;
    const now = this.clock.now();
    // Throughput over the last ten rounds (one round alone is too noisy).
    const prev = run.metrics.at(-10);
    const samplesPerSec = prev ? ((run.samples - prev.samples) * 1000) / Math.max(1, now - prev.time) : (samples * 1000) / Math.max(1, now - openedAt);
    let evaluated = false;
    if (run.version % run.spec.evalEvery === 0) {
      const evaluation = this.opts.evaluate(run);
      if (evaluation instanceof Promise) this.awaitEvaluation(run, run.version, evaluation);
      else {
        run.accuracy = evaluation.accuracy;
        run.evalLoss = evaluation.loss;
        run.evaluatedVersion = run.version;
        evaluated = true;
      }
    }
    const workers = this.workersOf(run.id).length;
    run.offeredSamplesPerSec = this.offeredSamplesPerSec(run.id);
    const point: MetricPoint = {
      version: run.version,
      time: now,
      loss: run.loss,
      accuracy: evaluated ? run.accuracy : null,
      evalLoss: evaluated ? run.evalLoss : null,
      samplesPerSec,
      workers,
      samples: run.samples,
    };
    run.metrics.push(point);
    if (run.metrics.length > 20_000) run.metrics.splice(0, run.metrics.length - 20_000);
    publish();
    // An idle worker holds what was just published (a pipeline worker gets its slice with its next task).
    for (const w of this.workersOf(run.id)) if (w.ready) w.version = run.version;
    const completed = run.checkStop();
    for (const h of this.commitHooks) h(run, point);
    if (completed) {
      this.opts.log.info({ runId: run.id, version: run.version, reason: run.stopReason }, 'run completed');
      this.event(run.id, 'completed', `run completed: ${run.stopReason}`);
      this.opts.port.broadcastRun(run.id, run.info());
    }
    if (evaluated || run.state !== 'running' || now - (this.lastUpdate.get(run.id) ?? 0) > 500) {
      this.lastUpdate.set(run.id, now);
      this.opts.port.broadcastUpdate(run.id, run.update(workers));
    }
    // A round boundary: its free workers may change run.
    this.rebalance(this.workersOf(run.id));
  }

  /**
   * An evaluation of `version` running off the event loop. Rounds go on meanwhile; its numbers
   * land on that version's metric point, become the run's latest, and may meet the stop rule.
   * A run removed, or one no longer running, takes the numbers but stops for no rule.
   */
  private awaitEvaluation(run: Run, version: number, pending: Promise<Evaluation | null>): void {
    run.evaluating.add(version);
    pending.then(
      (evaluation) => {
        run.evaluating.delete(version);
        if (evaluation) this.evaluated(run, version, evaluation);
      },
      (err: unknown) => {
        run.evaluating.delete(version);
        this.opts.log.error({ runId: run.id, version, err }, 'evaluation failed');
        this.event(run.id, 'error', `evaluation of round ${version} failed: ${(err as Error).message}`);
      },
    );
  }

  private evaluated(run: Run, version: number, evaluation: Evaluation): void {
    if (this.runs.get(run.id) !== run) return;
    // Results come in version order per run; one older than the numbers held would be stale.
    if (version < run.evaluatedVersion) return;
    run.evaluatedVersion = version;
    run.accuracy = evaluation.accuracy;
    run.evalLoss = evaluation.loss;
    let point: MetricPoint | undefined;
    for (let i = run.metrics.length - 1; i >= 0 && run.metrics[i].version >= version; i--) if (run.metrics[i].version === version) point = run.metrics[i];
    if (point) {
      point.accuracy = evaluation.accuracy;
      point.evalLoss = evaluation.loss;
    }
    const completed = run.state === 'running' && run.checkStop();
    if (completed) this.modeOf(run).stop(run);
    for (const h of this.evaluatedHooks) h(run, version, point);
    if (completed) {
      this.opts.log.info({ runId: run.id, version: run.version, evaluated: version, reason: run.stopReason }, 'run completed');
      this.event(run.id, 'completed', `run completed: ${run.stopReason} (round ${version})`);
      this.opts.port.broadcastRun(run.id, run.info());
    }
    this.lastUpdate.set(run.id, this.clock.now());
    this.opts.port.broadcastUpdate(run.id, run.update(this.workersOf(run.id).length));
    // Completed between rounds: its workers go where the shares want them.
    if (completed) this.rebalance(this.workersOf(run.id));
  }

  /** Pauses, resumes or stops a run (admin verbs build on this). */
  setState(run: Run, state: 'running' | 'paused' | 'stopped'): void {
    if (run.state === state) return;
    this.book();
    this.event(run.id, 'state', `run ${run.state === 'completed' && state === 'running' ? 'restarted' : state === 'running' ? 'resumed' : state}`);
    run.state = state;
    if (state === 'running') run.stopReason = null;
    if (state !== 'running') this.modeOf(run).stop(run);
    this.opts.port.broadcastRun(run.id, run.info());
    if (state === 'running') this.modeOf(run).maybeOpen(run);
    this.rebalance();
  }

  /**
   * Sets a run's weight among running runs (its spec's `share`); its workers follow at their
   * next round boundaries. Throws on a share that is not a positive number.
   */
  setShare(run: Run, share: number): void {
    const bad = shareError(share);
    if (bad) throw new Error(bad);
    if ((run.spec.share ?? 1) === share) return;
    this.book();
    this.event(run.id, 'state', `share set to ${share} (was ${run.spec.share ?? 1})`);
    run.spec.share = share;
    this.opts.port.broadcastRun(run.id, run.info());
    this.rebalance();
  }

  // ---- sharing the grid between runs (grid-shares.ts) ---------------------------------------

  /** Running runs with their shares, minimums and workers now; `total`: the workers not paused. */
  demand(): { runs: RunDemand[]; total: number } {
    const counts = new Map<string, number>();
    const running = [...this.runs.values()].filter((r) => r.state === 'running');
    for (const r of running) counts.set(r.id, 0);
    let total = 0;
    for (const w of this.workers.values()) {
      if (w.paused) continue;
      total++;
      if (w.runId && counts.has(w.runId)) counts.set(w.runId, counts.get(w.runId)! + 1);
    }
    const runs = running.map((r) => ({
      id: r.id,
      share: r.spec.share ?? 1, // runs stored before shares existed
      // A pipeline needs a worker per stage before it can open a round.
      minWorkers: Math.max(r.spec.sync.minWorkers, r.spec.parallelism.stages),
      workers: counts.get(r.id)!,
    }));
    return { runs, total };
  }

  /** Books the worker-seconds since the last change to the runs' accounts (call before any change). */
  private book(): void {
    const { runs, total } = this.demand();
    this.shares.accrue(this.clock.now(), runs, total);
  }

  /** Whether a task of the run is out (its round is under way): its free workers wait for the boundary. */
  private roundUnderWay(run: Run): boolean {
    const mode = this.modeOf(run) as Partial<Pick<SyncRounds, 'openTasks'>>;
    return (mode.openTasks?.(run.id).length ?? 0) > 0;
  }

  /**
   * Moves a worker to the run the shares want it in, if it may move now: it is not paused, and its
   * run is not running, or it is free (`free`, or ready and holding no task) between that run's
   * rounds, holding no pipeline stage. Returns whether it moved; `deferLeft` collects the run's
   * `left` calls (a boundary inside a commit: the next round opens once every move is decided).
   */
  private maybeMove(w: WorkerEntry, free: boolean, deferLeft?: (from: Run, w: WorkerEntry) => void): boolean {
    if (w.paused) return false;
    const from = w.runId ? this.runs.get(w.runId) : undefined;
    const running = from?.state === 'running';
    if (from && running && (!(free || w.ready) || w.placement !== null || this.roundUnderWay(from))) return false;
    // One run running and the worker on it: nothing to share (and no O(workers) look at every task).
    if (running && !this.severalRunning()) return false;
    this.book(); // the accounts up to now decide who is owed the odd worker
    const { runs, total } = this.demand();
    const open = this.openTo(w, runs);
    const to = this.shares.choose(running && open.some((r) => r.id === from!.id) ? from!.id : null, open, total);
    const target = to ? this.runs.get(to) : undefined;
    if (!target || target === from) return false;
    if (from) w.speedsByRun.set(from.id, w.speed);
    w.speed = w.speedsByRun.get(target.id) ?? new SpeedEstimate();
    w.ready = false;
    w.version = -1;
    w.paramsSent = -1;
    w.satOut = 0;
    w.placement = null;
    w.movedFrom = from?.id ?? null;
    this.opts.log.info({ workerId: w.id, from: from?.id, runId: target.id }, 'worker moved between runs');
    // The run message, then the new run's parameters (SyncRounds.joined): both before any task of it.
    this.assign(w, target);
    if (from) {
      this.event(from.id, 'leave', `worker ${w.id} moved to run ${target.id} (shares)`, w.id);
      if (deferLeft) deferLeft(from, w);
      else this.modeOf(from).left(from, w);
    }
    return true;
  }

  private severalRunning(): boolean {
    let n = 0;
    for (const r of this.runs.values()) if (r.state === 'running' && ++n > 1) return true;
    return false;
  }

  /** The runs a worker may serve: those that have not banned it. */
  private openTo(w: WorkerEntry, runs: RunDemand[]): RunDemand[] {
    const key = identityOf(w);
    return runs.filter((r) => !this.verification.banOf(r.id, key));
  }

  /** Lets every free worker (of `among`, default all) move where the shares want it. */
  private rebalance(among: Iterable<WorkerEntry> = this.workers.values()): void {
    const left: [Run, WorkerEntry][] = [];
    for (const w of [...among]) this.maybeMove(w, false, (from, moved) => left.push([from, moved]));
    for (const [from, w] of left) if (this.runs.get(from.id) === from) this.modeOf(from).left(from, w);
  }

  /** Forgets a run: its workers are left without one until another is created. */
  removeRun(run: Run): void {
    this.setState(run, 'stopped');
    this.runs.delete(run.id);
    this.channels.delete(run.id);
    this.verification.forgetRun(run.id);
    this.traffic.runs?.delete(run.id);
    this.shares.forget(run.id);
    for (const w of this.workersOf(run.id)) {
      w.runId = null;
      w.ready = false;
      w.movedFrom = run.id;
      this.opts.port.assign(w.id, null, run.id);
    }
    this.rebalance();
    const next = this.currentRun();
    if (next) for (const w of this.workers.values()) if (!w.runId) this.assign(w, next);
  }

  close(): void {
    for (const m of this.modes.values()) m.close();
  }
}
