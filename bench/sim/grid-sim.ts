// The virtual-time simulator of a grid: the real Scheduler (round modes, task sizing, leases,
// commit step) on the in-memory port and a manual clock, with simulated workers whose transfers
// and compute take virtual time from their profiles while their gradients are computed for real.
// A discrete-event loop moves the clock from one timer to the next; real work (gradients,
// evaluation) takes no virtual time. Every sync mode and coding is simulated as the real worker
// runs it (local inner steps, coded results with error feedback, coded parameter deltas), and
// the bytes each way are read from the coordinator's own per-run traffic counters. Benchmarks
// and tests build on it; nothing here knows of a particular experiment (time to target, churn,
// DiLoCo, compression). Further runs on the same dataset can share the grid (addRun): the
// scheduler's shares then decide which run each worker serves.
import pino from 'pino';
import { ManualClock } from '../../server/clock.ts';
import type { LoadedDataset } from '../../server/context.ts';
import { Evaluator } from '../../server/evaluator.ts';
import { MemoryPort } from '../../server/memory-port.ts';
import { Run, type MetricPoint } from '../../server/run.ts';
import type { SyncRounds } from '../../server/rounds/sync-rounds.ts';
import { Scheduler, type Evaluation } from '../../server/scheduler.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';
import { microBatchOf, type RunSpec } from '../../shared/run-spec.ts';
import { CpuGradients, datasetSource, type GradientEngine } from './gradients.ts';
import type { WorkerProfile } from './profiles.ts';
import { SimWorker, type WorkerBehaviour } from './sim-worker.ts';

export interface GridSimOptions {
  spec: RunSpec;
  /** The run's dataset: train examples for the gradients, the test split for evaluation. */
  dataset: LoadedDataset;
  /** Default: real gradients on the CPU backend. */
  engine?: GradientEngine;
  /** Default: the coordinator's Evaluator on the test split's first spec.evalExamples (free in virtual time). */
  evaluate?: (run: Run) => Evaluation;
}

export interface SimOutcome {
  /** Whether the run completed (its stop rule fired). */
  completed: boolean;
  stopReason: string | null;
  /** Virtual ms from the start to the last commit (to the stop when completed). */
  simMs: number;
  rounds: number;
  /** Examples folded into committed rounds. */
  examples: number;
  accuracy: number | null;
  /** The last evaluation's loss (nats per label), null before the first. */
  evalLoss: number | null;
  /** Payload bytes the run's workers sent (results) and were sent (tasks, parameters, snapshots), from the coordinator's counters. */
  bytesUp: number;
  bytesDown: number;
}

/**
 * @example
 * const sim = new GridSim({ spec, dataset: registry.get('mnist-10k')! });
 * for (const p of equalWorkers(4, 1000)) sim.addWorker(p);
 * const out = await sim.runUntil({ maxSimMs: 600_000 }); // out.simMs: virtual ms to the target
 */
export class GridSim {
  readonly clock = new ManualClock(0);
  readonly port = new MemoryPort();
  readonly scheduler: Scheduler;
  readonly run: Run;
  readonly workers = new Map<string, SimWorker>();
  /** Workers that left, for their counts. */
  private readonly departed: SimWorker[] = [];
  /** Every committed round's metric point, in order (time in virtual ms). */
  readonly commits: MetricPoint[] = [];
  private readonly engine: GradientEngine;
  /** Each run's engine, by run id (several runs sharing the grid). */
  private readonly engines = new Map<string, GradientEngine>();
  private readonly dataset: LoadedDataset;
  private readonly inFlight = new Set<Promise<unknown>>();
  private seq = 0;
  private lastCommitAt = 0;

  constructor(opts: GridSimOptions) {
    const { spec, dataset } = opts;
    const evaluator = opts.evaluate ? undefined : new Evaluator(dataset.test, spec.evalExamples);
    this.scheduler = new Scheduler({
      port: this.port,
      traffic: this.port.traffic,
      log: pino({ level: 'silent' }),
      clock: this.clock,
      evaluate: opts.evaluate ?? ((run) => evaluator!.evaluate(run.net, run.params)),
      labels: (_run, indices) => Uint32Array.from(indices, (i) => dataset.train.y[i]),
    });
    this.run = new Run(spec, dataset.info, 'sim');
    this.engine = opts.engine ?? new CpuGradients(this.run.net, microBatchOf(spec), datasetSource(dataset.train));
    this.engines.set(this.run.id, this.engine);
    this.dataset = dataset;
    this.scheduler.addRun(this.run);
    this.scheduler.onCommit((_run, point) => {
      this.commits.push(point);
      this.lastCommitAt = point.time;
    });
  }

  /**
   * Another run on the same grid and dataset, added now (the first is `run`); `engine` computes
   * its tasks (default: real gradients on the CPU backend). Its commits are not in `commits`.
   */
  addRun(spec: RunSpec, engine?: GradientEngine): Run {
    const run = new Run(spec, this.dataset.info, `sim-${this.engines.size + 1}`);
    this.engines.set(run.id, engine ?? new CpuGradients(run.net, microBatchOf(spec), datasetSource(this.dataset.train)));
    this.scheduler.addRun(run);
    return run;
  }

  /** A worker connects now (honest unless `behaviour` says otherwise); its hello reaches the coordinator after its uplink's delay. Returns its id. */
  addWorker(profile: WorkerProfile, id = `w${++this.seq}`, behaviour?: WorkerBehaviour): string {
    if (this.workers.has(id)) throw new Error(`a worker ${id} is already in the simulation`);
    const w = new SimWorker(id, profile, { clock: this.clock, scheduler: this.scheduler, engine: this.engine, engines: this.engines, traffic: this.port.traffic, track: (p) => this.track(p) }, behaviour);
    this.workers.set(id, w);
    this.port.connect(id, (msg) => w.fromCoordinator(msg));
    const hello = { protocol: PROTOCOL_VERSION, backend: 'cpu' as const, adapter: { vendor: 'sim', architecture: '', description: '' } };
    const at = w.up.send(0, this.clock.now());
    this.clock.setTimeout(() => {
      if (!w.left) this.scheduler.join(id, hello);
    }, at - this.clock.now());
    return id;
  }

  /** A worker leaves now (its tab closed): the coordinator sees the disconnect at once. */
  removeWorker(id: string, reason = 'left'): void {
    const w = this.workers.get(id);
    if (!w) return;
    w.leave();
    this.workers.delete(id);
    this.departed.push(w);
    this.port.disconnect(id);
    this.scheduler.leave(id, reason);
  }

  /** Calls `fn` every `ms` of virtual time (churn, a changing mix), until the simulation ends. */
  every(ms: number, fn: () => void): void {
    this.clock.setInterval(fn, ms);
  }

  /** Calls `fn` once at virtual time `at`. */
  at(at: number, fn: () => void): void {
    this.clock.setTimeout(fn, at - this.clock.now());
  }

  /** Payload bytes the workers received so far, by kind: task indices, and parameters (values, deltas, snapshots); left workers included. */
  downBytesByKind(): { tasks: number; params: number } {
    let tasks = 0;
    let params = 0;
    for (const w of [...this.workers.values(), ...this.departed]) {
      tasks += w.stats.taskBytes;
      params += w.stats.paramBytes;
    }
    return { tasks, params };
  }

  /** Examples handed out in the open round (in its tasks still out). */
  openExamples(): number {
    const mode = this.scheduler.modeOf(this.run) as Partial<Pick<SyncRounds, 'openTasks'>>;
    return (mode.openTasks?.(this.run.id) ?? []).reduce((a, t) => a + t.examples, 0);
  }

  /** Payload bytes of this run so far, each way, as the coordinator counts them (results up; tasks, parameters and snapshots down). */
  traffic(): { up: number; down: number } {
    const t = this.port.traffic.runs?.get(this.run.id);
    return { up: t?.socketIn ?? 0, down: (t?.socketOut ?? 0) + (t?.httpOut ?? 0) };
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /**
   * Moves virtual time from event to event until the run stops (its stop rule, or `until`),
   * nothing is left to happen, or `maxSimMs` passes. Real work due before an event is awaited first.
   */
  async runUntil(opts: { maxSimMs: number; until?: () => boolean }): Promise<SimOutcome> {
    const done = () => this.run.state !== 'running' || (opts.until?.() ?? false);
    while (!done()) {
      while (this.inFlight.size) await Promise.all(this.inFlight);
      const next = this.clock.nextAt();
      if (next === undefined || next > opts.maxSimMs) break;
      this.clock.advanceTo(next);
    }
    const { up, down } = this.traffic();
    return {
      completed: this.run.state === 'completed',
      stopReason: this.run.stopReason,
      simMs: this.lastCommitAt,
      rounds: this.run.version,
      examples: this.run.samples,
      accuracy: this.run.accuracy,
      evalLoss: this.run.evalLoss,
      bytesUp: up,
      bytesDown: down,
    };
  }

  /** Stops the scheduler's timers (the run's state is kept for reading). */
  close(): void {
    this.scheduler.close();
  }
}
