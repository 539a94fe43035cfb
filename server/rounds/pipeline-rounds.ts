// Pipeline rounds (model parallelism, with data parallelism across replicas): the model's layer
// list is cut into P stages balanced by cost (shared/stage.ts), D replicas of the pipeline each take part of the round's examples in
// micro-batches (GPipe), activations go forward and activation gradients backward through the
// coordinator, and stage gradients are averaged across replicas before one optimizer step.
// A round commits only when every stage of every replica has reported: a worker that leaves, a
// bad relay or the deadline abandons the round, its examples are re-queued and the pipeline is
// formed again from the workers there (standbys included). The fastest ready workers take the
// stages; the slowest stand by.
import { randomUUID } from 'node:crypto';
import { float32From, isBinary } from '../../shared/binary.ts';
import type { Placement, RelayMeta, ResultAck, TaskResult } from '../../shared/protocol.ts';
import { sizeOf } from '../../shared/layers/layer.ts';
import { microBatchSizes, partitionLayers, type StagePlan } from '../../shared/stage.ts';
import { createAccumulator, type Accumulator } from '../accumulator.ts';
import { checkGradient } from '../aggregator.ts';
import type { TimerHandle } from '../clock.ts';
import type { Run } from '../run.ts';
import { countTraffic } from '../worker-port.ts';
import type { WorkerEntry } from '../workers.ts';
import { registerRoundMode, type RoundHost, type RoundMode } from './round-mode.ts';

interface StageTaskState {
  id: string;
  workerId: string;
  replica: number;
  plan: StagePlan;
  reported: boolean;
  computeMs: number;
  sentAt: number;
}

interface PipeRound {
  version: number;
  openedAt: number;
  timer: TimerHandle;
  plans: StagePlan[];
  replicas: { examples: Uint32Array; sizes: number[] }[];
  tasks: Map<string, StageTaskState>;
  /** Task id at `${replica}:${stage}`. */
  at: Map<string, string>;
  sums: Accumulator[];
  loss: { sum: number; weight: number };
  unreported: number;
  relayedBytes: number;
}

/** What one committed pipeline round cost (the benchmark reads these). */
export interface PipelineRoundStats {
  version: number;
  ms: number;
  relayedBytes: number;
  /** Compute time each stage task reported, ms. */
  computeMs: number[];
  stages: number;
  replicas: number;
  microBatches: number;
}

export class PipelineRounds implements RoundMode {
  private rounds = new Map<string, PipeRound>();
  /**
   * After a round, the workers that were in it: the next round waits (briefly) for them to be
   * ready again, so that it has as many replicas as the last one instead of whoever acked first.
   */
  private regroup = new Map<string, { ids: Set<string>; until: number; timer?: TimerHandle }>();
  /** Cancelled or expired task ids: their late messages are ignored, not counted as attacks. */
  private dead = new Set<string>();
  readonly lastStats = new Map<string, PipelineRoundStats>();

  constructor(private readonly host: RoundHost) {}

  joined(): void {
    // A pipeline worker gets only its stage's slice, with each task.
  }

  ready(run: Run, w: WorkerEntry): void {
    w.version = run.version;
    w.ready = !w.paused;
    this.maybeOpen(run);
  }

  left(run: Run, w: WorkerEntry): void {
    this.workerLeft(run, w.id);
    this.maybeOpen(run);
  }

  /** Opens a round when enough ready workers are there for at least one replica. */
  maybeOpen(run: Run): void {
    const clock = this.host.clock;
    if (run.state !== 'running' || this.rounds.has(run.id)) return;
    const { stages, replicas, microBatches } = run.spec.parallelism;
    const present = this.host.workersOf(run.id);
    const ready = present.filter((w) => w.ready && w.version === run.version).sort((a, b) => a.joinedAt - b.joinedAt || a.id.localeCompare(b.id));
    const wait = this.regroup.get(run.id);
    if (wait) {
      const missing = present.filter((w) => wait.ids.has(w.id) && !(w.ready && w.version === run.version) && !w.paused);
      if (missing.length > 0 && clock.now() < wait.until) {
        wait.timer ??= clock.setTimeout(() => {
          wait.timer = undefined;
          this.maybeOpen(run);
        }, wait.until - clock.now());
        return;
      }
      clock.clearTimeout(wait.timer);
      this.regroup.delete(run.id);
    }
    if (ready.length < run.spec.sync.minWorkers) return;
    const d = replicas === 'auto' ? Math.floor(ready.length / stages) : ready.length >= replicas * stages ? replicas : 0;
    if (d < 1) return;
    const plans = partitionLayers(run.net.description, stages);

    // Keep workers where they were (their stage's parameters stay warm), then fill the gaps.
    const slots: (WorkerEntry | undefined)[] = new Array(d * stages);
    const free: WorkerEntry[] = [];
    for (const w of ready) {
      const p = w.placement;
      const k = p && p.stages === stages && p.replica < d ? p.replica * stages + p.stage : -1;
      if (k >= 0 && !slots[k]) slots[k] = w;
      else free.push(w);
    }
    // The fastest free workers fill the gaps (measured speed; not measured yet counts as fastest, to be measured).
    const speed = (w: WorkerEntry) => (w.speed.known ? w.speed.perSec : Infinity);
    free.sort((a, b) => speed(b) - speed(a));
    for (let k = 0; k < slots.length; k++) if (!slots[k]) slots[k] = free.shift();
    for (const w of free) w.placement = null; // standbys

    const sizes = this.replicaSizes(run, d);
    const round: PipeRound = {
      version: run.version,
      openedAt: clock.now(),
      timer: clock.setTimeout(() => this.abort(run, `round ${run.version + 1} passed its ${run.spec.sync.roundDeadlineMs} ms deadline`, 'deadline'), run.spec.sync.roundDeadlineMs),
      plans,
      replicas: sizes.map((n) => ({ examples: run.cursor.next(n), sizes: microBatchSizes(n, microBatches) })),
      tasks: new Map(),
      at: new Map(),
      sums: plans.map((p) => createAccumulator('mean', p.paramCount)),
      loss: { sum: 0, weight: 0 },
      unreported: d * stages,
      relayedBytes: 0,
    };
    this.rounds.set(run.id, round);
    for (let r = 0; r < d; r++) {
      for (const plan of plans) {
        const w = slots[r * stages + plan.index]!;
        const task: StageTaskState = { id: randomUUID().slice(0, 12), workerId: w.id, replica: r, plan, reported: false, computeMs: 0, sentAt: clock.now() };
        round.tasks.set(task.id, task);
        round.at.set(`${r}:${plan.index}`, task.id);
        this.send(run, round, w, task);
      }
    }
  }

  /** globalBatch split across replicas, else batchPerTask examples per replica. */
  private replicaSizes(run: Run, d: number): number[] {
    const g = run.spec.globalBatch;
    if (g === undefined) return Array(d).fill(run.spec.batchPerTask);
    return Array.from({ length: d }, (_, i) => Math.floor(g / d) + (i < g % d ? 1 : 0));
  }

  private send(run: Run, round: PipeRound, w: WorkerEntry, task: StageTaskState): void {
    const { plan, replica } = task;
    const rep = round.replicas[replica];
    const placement: Placement = { replica, stage: plan.index, stages: plan.stages, firstLayer: plan.firstLayer, endLayer: plan.endLayer };
    w.placement = placement;
    w.ready = false;
    // Each stage's parameters go to that stage's workers only.
    const slice = run.params.subarray(plan.paramOffset, plan.paramOffset + plan.paramCount);
    w.paramsSent = -1; // it holds a slice, not the whole model
    this.host.port.params(w.id, { runId: run.id, version: run.version, count: plan.paramCount, offset: plan.paramOffset }, slice);
    const data = plan.first ? rep.examples : plan.last ? this.host.labels(run, rep.examples) : new Uint32Array(0);
    this.host.port.task(
      w.id,
      {
        taskId: task.id,
        runId: run.id,
        version: run.version,
        leaseMs: run.spec.sync.roundDeadlineMs,
        count: rep.examples.length,
        stage: { index: plan.index, stages: plan.stages, replica, firstLayer: plan.firstLayer, endLayer: plan.endLayer, paramOffset: plan.paramOffset, paramCount: plan.paramCount, microBatches: rep.sizes },
      },
      data,
    );
  }

  /** Forwards an activation to the next stage, or an activation gradient to the previous one. */
  relay(run: Run, w: WorkerEntry, meta: RelayMeta, data: unknown): void {
    const round = this.rounds.get(run.id);
    const task = round?.tasks.get(meta.taskId);
    if (!round || !task) return; // a relay of an abandoned round: nothing to do
    const bad = (why: string) => {
      run.counters.rejected++;
      w.rejected++;
      this.host.event(run.id, 'reject', `relay of worker ${w.id} not used: ${why}`, w.id);
      this.abort(run, `worker ${w.id} sent a bad relay (${why})`, 'complete');
    };
    if (task.workerId !== w.id) return bad(`task ${meta.taskId} belongs to another worker`);
    const { plan } = task;
    const sizes = round.replicas[task.replica].sizes;
    if (meta.mb >= sizes.length) return bad(`micro-batch ${meta.mb} of ${sizes.length}`);
    const forward = meta.kind === 'activation';
    if (forward ? plan.last : plan.first) return bad(`stage ${plan.index} sends no ${meta.kind}s`);
    if (!isBinary(data)) return bad('the tensor must be a binary attachment');
    const values = float32From(data);
    const width = sizeOf(forward ? plan.outShape : plan.inShape);
    if (values.length !== sizes[meta.mb] * width) return bad(`${meta.kind} has ${values.length} values, expected ${sizes[meta.mb]} x ${width}`);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return bad(`${meta.kind} value ${i} is ${values[i]}`);
    const targetId = round.at.get(`${task.replica}:${plan.index + (forward ? 1 : -1)}`)!;
    const target = round.tasks.get(targetId)!;
    const tw = this.host.workersOf(run.id).find((x) => x.id === target.workerId);
    if (!tw) return this.abort(run, `the worker of stage ${target.plan.index} of replica ${task.replica} is gone`, 'complete');
    round.relayedBytes += values.byteLength;
    countTraffic(this.host.traffic, run.id, 'socketIn', values.byteLength);
    this.host.port.relay(tw.id, { taskId: target.id, mb: meta.mb, kind: meta.kind }, values);
  }

  /** A stage's gradient, summed over its micro-batches. */
  result(run: Run, w: WorkerEntry, meta: TaskResult, data: unknown, ack: (a: ResultAck) => void): void {
    if (this.dead.delete(meta.taskId)) {
      run.counters.late++;
      ack({ ok: false, error: 'late: the round was abandoned or closed before this result arrived' });
      return;
    }
    const round = this.rounds.get(run.id);
    const task = round?.tasks.get(meta.taskId);
    if (!round || !task) {
      run.counters.rejected++;
      w.rejected++;
      ack({ ok: false, error: `unknown task ${meta.taskId}` });
      this.host.event(run.id, 'reject', `result of worker ${w.id} not used: unknown task ${meta.taskId}`, w.id);
      return;
    }
    const reject = (error: string) => {
      run.counters.rejected++;
      w.rejected++;
      ack({ ok: false, error });
      this.host.event(run.id, 'reject', `result of worker ${w.id} not used: ${error}`, w.id);
      this.abort(run, `worker ${w.id} sent a bad stage result`, 'complete');
    };
    if (task.workerId !== w.id) return reject(`task ${meta.taskId} belongs to another worker`);
    if (meta.version !== round.version) return reject(`result computed on version ${meta.version}, the round is at ${round.version}`);
    if (task.reported) return reject(`task ${meta.taskId} already reported`);
    const samples = round.replicas[task.replica].examples.length;
    if (meta.samples !== samples) return reject(`result covers ${meta.samples} samples, the replica had ${samples}`);
    if (!isBinary(data)) return reject('gradient must be a binary attachment');
    // The last stage reports the replica's loss: plausible, as any data-parallel result's.
    const implausible = task.plan.last ? this.host.verification.lossRefusal(run.id, meta.loss) : null;
    if (implausible) return reject(implausible);
    const gradient = float32From(data);
    countTraffic(this.host.traffic, run.id, 'socketIn', gradient.byteLength);
    const check = checkGradient(gradient, task.plan.paramCount, task.plan.last ? meta.loss : 0, this.host.maxGradientNorm);
    if (!check.ok) return reject(check.message!);
    round.sums[task.plan.index].add(gradient, samples, 0);
    // The replica's pace, as the coordinator sees it: what placement ranks workers by.
    w.speed.observe(samples, this.host.clock.now() - task.sentAt);
    if (task.plan.last) {
      round.loss.sum += meta.loss * samples;
      round.loss.weight += samples;
      this.host.verification.lossUsed(run.id, meta.loss);
    }
    task.reported = true;
    task.computeMs = meta.computeMs ?? 0;
    if (meta.allocatedBytes !== undefined) w.allocatedBytes = meta.allocatedBytes;
    w.tasksDone++;
    w.samples += samples;
    this.host.workerChanged(w);
    ack({ ok: true });
    if (--round.unreported === 0) this.commit(run, round);
  }

  private commit(run: Run, round: PipeRound): void {
    this.host.clock.clearTimeout(round.timer);
    this.rounds.delete(run.id);
    // Stage by stage, the replicas' gradients weighted by their examples; concatenated, that is the
    // gradient of the mean loss over every example of the round.
    const mean = new Float32Array(run.paramCount);
    round.plans.forEach((p, s) => mean.set(round.sums[s].mean(), p.paramOffset));
    const ms = this.host.clock.now() - round.openedAt;
    this.lastStats.set(run.id, {
      version: round.version + 1,
      ms,
      relayedBytes: round.relayedBytes,
      computeMs: [...round.tasks.values()].map((t) => t.computeMs),
      stages: round.plans.length,
      replicas: round.replicas.length,
      microBatches: round.replicas[0].sizes.length,
    });
    this.host.roundClosed(run, ms, 'complete');
    this.expectBack(run, round);
    // Counted here, not as results arrive: a result of an abandoned round is never folded.
    run.counters.folded += round.tasks.size;
    const samples = round.replicas.reduce((n, r) => n + r.examples.length, 0);
    // Each stage's new parameters go out with the next round's tasks: nothing to publish now.
    this.host.commit(run, { update: mean, samples, loss: round.loss.sum / Math.max(1, round.loss.weight), openedAt: round.openedAt, lrFactor: 1 }, () => {});
    this.maybeOpen(run);
  }

  /** Abandons the round: nothing of it is committed; its examples go back to the queue. */
  abort(run: Run, reason: string, how: 'complete' | 'deadline'): void {
    const round = this.rounds.get(run.id);
    if (!round) return;
    this.host.clock.clearTimeout(round.timer);
    this.rounds.delete(run.id);
    for (const rep of round.replicas) run.cursor.requeue(rep.examples);
    if (how === 'deadline') run.counters.roundsTimedOut++;
    this.host.event(run.id, how === 'deadline' ? 'round-timeout' : 'error', `round ${round.version + 1} abandoned, to be retried: ${reason}`);
    this.host.log.warn({ runId: run.id, version: round.version, reason }, 'pipeline round abandoned');
    this.host.roundClosed(run, this.host.clock.now() - round.openedAt, how);
    this.expectBack(run, round);
    const workers = new Map(this.host.workersOf(run.id).map((w) => [w.id, w]));
    if (this.dead.size > 10_000) this.dead.clear();
    for (const t of round.tasks.values()) {
      this.dead.add(t.id);
      const w = workers.get(t.workerId);
      if (w && !t.reported) this.host.port.cancel(w.id, { taskId: t.id, reason });
      // A worker that already reported is idle: it asks for work again after its ack.
    }
  }

  /** The next round waits up to a second for this round's workers to ask for work again. */
  private expectBack(run: Run, round: PipeRound): void {
    this.host.clock.clearTimeout(this.regroup.get(run.id)?.timer);
    this.regroup.set(run.id, { ids: new Set([...round.tasks.values()].map((t) => t.workerId)), until: this.host.clock.now() + 1000 });
  }

  /** A worker left: if it held a stage of the open round, the round is retried without it. */
  workerLeft(run: Run, workerId: string): void {
    const round = this.rounds.get(run.id);
    if (!round) return;
    for (const t of round.tasks.values()) {
      if (t.workerId === workerId) {
        this.abort(run, `worker ${workerId} (stage ${t.plan.index} of replica ${t.replica}) left`, 'complete');
        return;
      }
    }
  }

  /** Stops the open round of a run that is paused or stopped. */
  stop(run: Run): void {
    this.abort(run, `run ${run.state}`, 'complete');
  }

  close(): void {
    for (const r of this.rounds.values()) this.host.clock.clearTimeout(r.timer);
    for (const g of this.regroup.values()) this.host.clock.clearTimeout(g.timer);
    this.rounds.clear();
    this.regroup.clear();
  }
}

registerRoundMode('pipeline', (host) => new PipelineRounds(host));
