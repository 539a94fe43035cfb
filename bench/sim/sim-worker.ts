// One simulated worker on the in-memory port: what the coordinator sends reaches it after its
// downlink's delay, it computes each task for real (a gradient, or in local mode the inner steps
// of its own optimizer, on the parameters of the version the task names) while its compute time
// in virtual time is examples / speed, and its result, coded as the run's compression.up with
// the worker's own error feedback, then its next `ready`, reach the coordinator after its
// uplink's delay. Every message takes the link time of the bytes it really carries (coded
// results up; parameters, deltas, snapshots and task indices down). It behaves as
// client/worker/worker-client.ts does: ready on joining a run, one task at a time, ready again
// once the coordinator has acknowledged a result. Pipeline stages are not simulated here.
import type { ManualClock } from '../../server/clock.ts';
import type { PortMessage } from '../../server/memory-port.ts';
import type { Scheduler } from '../../server/scheduler.ts';
import { countTraffic, type Traffic } from '../../server/worker-port.ts';
import type { RunInfo, TaskMeta } from '../../shared/protocol.ts';
import { taskExamples } from '../../shared/epoch-order.ts';
import { MemoryReplica } from '../../server/params/memory-replica.ts';
import { codingOf, encodeUpdate, ErrorFeedback, type UpdateCoding } from '../../shared/update-codec.ts';
import type { GradientEngine } from './gradients.ts';
import { Link } from './link.ts';
import type { WorkerProfile } from './profiles.ts';

export interface SimWorkerHost {
  clock: ManualClock;
  scheduler: Scheduler;
  engine: GradientEngine;
  /** Several runs on one grid: each run's engine (its model), by run id; else `engine`. */
  engines?: Map<string, GradientEngine>;
  /** The coordinator's traffic counters: a snapshot fetched over HTTP counts there, as the route counts it. */
  traffic?: Traffic;
  /** Registers real work in flight: the simulator lets it finish before it moves time on. */
  track(work: Promise<unknown>): void;
}

export interface SimWorkerStats {
  tasks: number;
  examples: number;
  /** Virtual ms spent computing. */
  computeMs: number;
  /** Results the coordinator did not use (late, or refused). */
  refused: number;
  /** Tasks dropped because the parameters of their run and version were not here. */
  stale: number;
  /** Examples computed, by run (a worker may serve several runs in turn). */
  examplesByRun: Map<string, number>;
  /** Bytes of the coded results sent (payload only). */
  resultBytes: number;
  /** Payload bytes received: task indices, and parameters (values, coded deltas, snapshots). */
  taskBytes: number;
  paramBytes: number;
}

/**
 * What a worker does beyond the honest default (bench/sim/attacks.ts builds hostile ones): its own
 * gradient engine (labels flipped), a look at each result once computed, and a result of its own.
 */
export interface WorkerBehaviour {
  /** Computes this worker's tasks instead of the grid's engine. */
  engine?: GradientEngine;
  /** Sees each result as soon as it is computed (before time moves on). */
  computed?(meta: TaskMeta, out: { loss: number; update: Float32Array }): void;
  /** Replaces the result when the compute ends in virtual time (every task computed by then is known). */
  send?(meta: TaskMeta, out: { loss: number; update: Float32Array }): { loss: number; update: Float32Array };
}

/** Parameter versions a worker keeps: a task names the version it is for. */
const KEEP_VERSIONS = 4;

export class SimWorker {
  readonly down: Link;
  readonly up: Link;
  readonly stats: SimWorkerStats = { tasks: 0, examples: 0, computeMs: 0, refused: 0, stale: 0, examplesByRun: new Map(), resultBytes: 0, taskBytes: 0, paramBytes: 0 };
  private readonly params = new Map<number, Float32Array>();
  /** The parameters as the coordinator's messages build them (snapshot, then values or deltas). */
  private readonly copy: MemoryReplica;
  private readonly queue: { meta: TaskMeta; indices: Uint32Array }[] = [];
  private run: RunInfo | null = null;
  /** What the lossy coding of this run's results has not sent yet. */
  private feedback?: { coding: UpdateCoding; ef: ErrorFeedback };
  private busy = false;
  private gone = false;

  constructor(
    readonly id: string,
    readonly profile: WorkerProfile,
    private readonly host: SimWorkerHost,
    private readonly behaviour: WorkerBehaviour = {},
  ) {
    this.copy = new MemoryReplica((runId) => host.scheduler.channelById(runId));
    this.down = new Link(profile.down);
    this.up = new Link(profile.up);
  }

  /** The port's handler: a message from the coordinator, sent now, delivered after the downlink's delay. */
  fromCoordinator(msg: PortMessage): void {
    // A snapshot comes over HTTP on the same downlink: its bytes count there.
    const snapshot = msg.kind === 'params' ? (msg.meta.snapshot?.bytes ?? 0) : 0;
    if (snapshot && this.host.traffic && msg.kind === 'params') countTraffic(this.host.traffic, msg.meta.runId, 'httpOut', snapshot);
    const bytes = ('data' in msg ? msg.data.byteLength : 0) + snapshot;
    if (msg.kind === 'task') this.stats.taskBytes += bytes;
    else if (msg.kind === 'params') this.stats.paramBytes += bytes;
    this.after(this.down.send(bytes, this.host.clock.now()), () => this.receive(msg));
  }

  /** Sends to the coordinator now; `deliver` runs when the message arrives there. */
  private toCoordinator(bytes: number, deliver: () => void): void {
    this.after(this.up.send(bytes, this.host.clock.now()), deliver);
  }

  private after(at: number, fn: () => void): void {
    this.host.clock.setTimeout(() => {
      if (!this.gone) fn();
    }, at - this.host.clock.now());
  }

  /** The worker leaves: nothing more goes out from it, and what is on its way to it is dropped. */
  leave(): void {
    this.gone = true;
    this.queue.length = 0;
    this.host.engine.forget(this.id);
    for (const e of this.host.engines?.values() ?? []) if (e !== this.host.engine) e.forget(this.id);
  }

  get left(): boolean {
    return this.gone;
  }

  private receive(msg: PortMessage): void {
    switch (msg.kind) {
      case 'run':
        if (msg.meta?.id !== this.run?.id) {
          // Another run (the shares moved this worker): nothing of the last one's is kept, as worker-client.ts.
          this.feedback = undefined;
          this.params.clear();
          this.copy.replica = undefined;
        }
        this.run = msg.meta;
        if (msg.meta && msg.meta.state === 'running') this.announceReady();
        return;
      case 'params': {
        if (msg.meta.runId !== this.run?.id) return; // of a run it no longer serves
        let held;
        try {
          held = this.copy.receive(msg.meta, msg.data);
        } catch {
          const runId = msg.meta.runId;
          this.toCoordinator(0, () => this.host.scheduler.ready(this.id, { runId, version: Math.max(0, this.newestVersion()), resync: true }));
          return;
        }
        this.params.set(msg.meta.version, held.params.slice());
        for (const v of this.params.keys()) if (v <= msg.meta.version - KEEP_VERSIONS) this.params.delete(v);
        return;
      }
      case 'task':
        this.queue.push({ meta: msg.meta, indices: taskExamples(msg.meta, msg.data) });
        this.drain();
        return;
      default:
        return; // welcome, run-update, cancel and relay change nothing for a data-parallel worker
    }
  }

  private newestVersion(): number {
    return this.params.size ? Math.max(...this.params.keys()) : 0;
  }

  private announceReady(): void {
    const runId = this.run?.id;
    if (!runId) return;
    const version = this.newestVersion();
    this.toCoordinator(0, () => this.host.scheduler.ready(this.id, { runId, version }));
  }

  private drain(): void {
    if (this.busy) return;
    const task = this.queue.shift();
    if (!task) return;
    const { meta, indices } = task;
    const params = meta.runId === this.run?.id ? this.params.get(meta.version) : undefined;
    if (!params) {
      // Parameters precede their task on the link; without them the task is stale.
      this.stats.stale++;
      this.announceReady();
      return this.drain();
    }
    this.busy = true;
    const computeMs = (indices.length * 1000) / this.profile.speed;
    let out: { loss: number; update: Float32Array } | undefined;
    const engine = this.behaviour.engine ?? this.host.engines?.get(meta.runId) ?? this.host.engine;
    const work = (
      meta.local
        ? engine.innerSteps(this.id, params, indices, meta.local.steps, meta.local.batch, this.run!.spec.optimizer).then((r) => (out = { loss: r.loss, update: r.pseudo }))
        : engine.compute(params, indices).then((g) => (out = { loss: g.loss, update: g.grads }))
    ).then((o) => this.behaviour.computed?.(meta, o));
    this.host.track(work);
    this.after(this.host.clock.now() + computeMs, () => {
      if (!out) throw new Error(`worker ${this.id}: task ${meta.taskId} was not computed before its virtual end`);
      if (this.behaviour.send) out = this.behaviour.send(meta, out);
      this.stats.tasks++;
      this.stats.examples += indices.length;
      this.stats.examplesByRun.set(meta.runId, (this.stats.examplesByRun.get(meta.runId) ?? 0) + indices.length);
      this.stats.computeMs += computeMs;
      this.report(meta, out, computeMs);
    });
  }

  /** Codes a result as the run's compression.up asks, with error feedback for the lossy codings (as worker-client.ts). */
  private encode(update: Float32Array): { coding: UpdateCoding; bytes: Uint8Array } {
    const coding = codingOf(this.run!.spec.compression, 'up');
    if (coding.kind === 'none') return { coding, bytes: new Uint8Array(update.buffer, update.byteOffset, update.byteLength) };
    if (!this.feedback || this.feedback.coding.kind !== coding.kind || this.feedback.ef.residual.length !== update.length) this.feedback = { coding, ef: new ErrorFeedback(update.length) };
    return { coding, bytes: encodeUpdate(coding, update, this.feedback.ef) };
  }

  private report(meta: TaskMeta, out: { loss: number; update: Float32Array }, computeMs: number): void {
    // Coded when the compute ends, as a real worker does: the error feedback follows the order of its tasks.
    const { coding, bytes } = this.encode(out.update);
    this.stats.resultBytes += bytes.byteLength;
    const result = { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: out.loss, computeMs, coding: coding.kind };
    this.toCoordinator(bytes.byteLength, () =>
      this.host.scheduler.result(this.id, result, bytes, (ack) => {
        if (!ack.ok) this.stats.refused++;
        // The acknowledgement comes back down; then the worker asks for its next task.
        this.after(this.down.send(0, this.host.clock.now()), () => {
          this.busy = false;
          this.announceReady();
          this.drain();
        });
      }),
    );
  }
}
