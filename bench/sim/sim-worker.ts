// One simulated worker on the in-memory port: what the coordinator sends reaches it after its
// downlink's delay, it computes each task's gradient for real (on the parameters of the version
// the task names) while its compute time in virtual time is examples / speed, and its result,
// then its next `ready`, reach the coordinator after its uplink's delay. It behaves as
// client/worker/worker-client.ts does: ready on joining a run, one task at a time, ready again
// once the coordinator has acknowledged a result. Pipeline stages are not simulated here.
import type { ManualClock } from '../../server/clock.ts';
import type { PortMessage } from '../../server/memory-port.ts';
import type { Scheduler } from '../../server/scheduler.ts';
import type { TaskMeta } from '../../shared/protocol.ts';
import { MemoryReplica } from '../../server/params/memory-replica.ts';
import type { GradientEngine, TaskGradient } from './gradients.ts';
import { Link } from './link.ts';
import type { WorkerProfile } from './profiles.ts';

export interface SimWorkerHost {
  clock: ManualClock;
  scheduler: Scheduler;
  engine: GradientEngine;
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
  /** Tasks dropped because the parameters of their version were not here. */
  stale: number;
}

/** Parameter versions a worker keeps: a task names the version it is for. */
const KEEP_VERSIONS = 4;

export class SimWorker {
  readonly down: Link;
  readonly up: Link;
  readonly stats: SimWorkerStats = { tasks: 0, examples: 0, computeMs: 0, refused: 0, stale: 0 };
  private readonly params = new Map<number, Float32Array>();
  /** The parameters as the coordinator's messages build them (snapshot, then values or deltas). */
  private readonly copy: MemoryReplica;
  private readonly queue: { meta: TaskMeta; indices: Uint32Array }[] = [];
  private runId: string | null = null;
  private busy = false;
  private gone = false;

  constructor(
    readonly id: string,
    readonly profile: WorkerProfile,
    private readonly host: SimWorkerHost,
  ) {
    this.copy = new MemoryReplica((runId) => host.scheduler.channelById(runId));
    this.down = new Link(profile.down);
    this.up = new Link(profile.up);
  }

  /** The port's handler: a message from the coordinator, sent now, delivered after the downlink's delay. */
  fromCoordinator(msg: PortMessage): void {
    // A snapshot comes over HTTP on the same downlink: its bytes count there.
    const bytes = ('data' in msg ? msg.data.byteLength : 0) + (msg.kind === 'params' ? (msg.meta.snapshot?.bytes ?? 0) : 0);
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
  }

  get left(): boolean {
    return this.gone;
  }

  private receive(msg: PortMessage): void {
    switch (msg.kind) {
      case 'run':
        this.runId = msg.meta?.id ?? null;
        if (msg.meta && msg.meta.state === 'running') this.announceReady();
        return;
      case 'params': {
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
        this.queue.push({ meta: msg.meta, indices: msg.data });
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
    const runId = this.runId;
    if (!runId) return;
    const version = this.newestVersion();
    this.toCoordinator(0, () => this.host.scheduler.ready(this.id, { runId, version }));
  }

  private drain(): void {
    if (this.busy) return;
    const task = this.queue.shift();
    if (!task) return;
    const { meta, indices } = task;
    const params = this.params.get(meta.version);
    if (!params) {
      // Parameters precede their task on the link; without them the task is stale.
      this.stats.stale++;
      this.announceReady();
      return this.drain();
    }
    this.busy = true;
    const computeMs = (indices.length * 1000) / this.profile.speed;
    let out: TaskGradient | undefined;
    const work = this.host.engine.compute(params, indices).then((g) => (out = g));
    this.host.track(work);
    this.after(this.host.clock.now() + computeMs, () => {
      if (!out) throw new Error(`worker ${this.id}: the gradient of task ${meta.taskId} was not computed before its virtual end`);
      this.stats.tasks++;
      this.stats.examples += indices.length;
      this.stats.computeMs += computeMs;
      this.report(meta, out, computeMs);
    });
  }

  private report(meta: TaskMeta, g: TaskGradient, computeMs: number): void {
    const result = { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss: g.loss, computeMs };
    this.toCoordinator(g.grads.byteLength, () =>
      this.host.scheduler.result(this.id, result, g.grads.buffer, (ack) => {
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
