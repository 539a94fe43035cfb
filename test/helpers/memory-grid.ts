// A deterministic grid for round-logic tests: the real Scheduler on the in-memory port and a
// manual clock, with workers that do what client/worker/worker-client.ts does (snapshot then
// deltas through the same ParamReplica, gradients or inner steps on the CPU backend, results coded
// with error feedback) but answer at once and one task at a time, in the order tasks were sent.
// Time only moves when nothing is left to compute, so runs are reproducible bit for bit.
import pino from 'pino';
import { cpuBackendFor, type GradientBackend } from '../../client/worker/backend.ts';
import { taskGradient, type ExampleSource } from '../../client/worker/task-gradient.ts';
import { taskInnerSteps } from '../../client/worker/task-local.ts';
import { ManualClock } from '../../server/clock.ts';
import { Evaluator } from '../../server/evaluator.ts';
import type { EventLog } from '../../server/event-log.ts';
import type { LoadedDataset } from '../../server/context.ts';
import { MemoryPort, type PortMessage } from '../../server/memory-port.ts';
import { MemoryReplica } from '../../server/params/memory-replica.ts';
import { Run } from '../../server/run.ts';
import { Scheduler } from '../../server/scheduler.ts';
import { featuresAsFloat } from '../../shared/dataset.ts';
import { taskExamples } from '../../shared/epoch-order.ts';
import { PROTOCOL_VERSION, type TaskMeta, type TaskResult } from '../../shared/protocol.ts';
import { microBatchOf, type RunSpec } from '../../shared/run-spec.ts';
import { codingOf, encodeUpdate, ErrorFeedback, type UpdateCoding } from '../../shared/update-codec.ts';

export class MemoryWorker {
  readonly copy: MemoryReplica;
  readonly backend: GradientBackend;
  private feedback?: ErrorFeedback;
  private runId: string | null = null;
  /** Results the coordinator refused, with its reasons. */
  readonly refused: string[] = [];
  /** Set to replace this worker's coded result (a hostile or broken worker). */
  tamper?: (bytes: Uint8Array, meta: TaskResult) => { bytes: Uint8Array; meta: TaskResult };

  constructor(
    readonly id: string,
    private readonly grid: MemoryGrid,
  ) {
    this.copy = new MemoryReplica((runId) => grid.scheduler.channelById(runId));
    this.backend = cpuBackendFor(grid.run.net, microBatchOf(grid.run.spec));
  }

  receive(msg: PortMessage): void {
    switch (msg.kind) {
      case 'run':
        this.runId = msg.meta?.id ?? null;
        if (msg.meta?.state === 'running') this.ready();
        return;
      case 'params':
        try {
          this.copy.receive(msg.meta, msg.data);
        } catch {
          this.ready(true);
        }
        return;
      case 'task':
        this.grid.enqueue(() => this.compute(msg.meta, taskExamples(msg.meta, msg.data)));
        return;
      default:
        return;
    }
  }

  private ready(resync = false): void {
    const runId = this.runId;
    if (runId) this.grid.scheduler.ready(this.id, { runId, version: Math.max(0, this.copy.replica?.version ?? 0), ...(resync ? { resync } : {}) });
  }

  private async compute(meta: TaskMeta, indices: Uint32Array): Promise<void> {
    if (!this.grid.scheduler.workers.get(this.id)) return; // left
    const replica = this.copy.replica;
    if (!replica || replica.version !== meta.version) return this.ready();
    const run = this.grid.run;
    let loss: number;
    let update: Float32Array;
    if (meta.local) {
      const out = (await taskInnerSteps(this.backend, replica.params, this.grid.source, indices, meta.local.steps, meta.local.batch, run.spec.optimizer, () => true))!;
      ({ loss, pseudo: update } = out);
    } else {
      this.backend.setParams(replica.params);
      const out = (await taskGradient(this.backend, this.grid.source, indices, () => true))!;
      loss = out.loss;
      update = out.grads.slice();
    }
    const coding: UpdateCoding = codingOf(run.spec.compression, 'up');
    if (coding.kind !== 'none') this.feedback ??= new ErrorFeedback(update.length);
    let bytes = coding.kind === 'none' ? new Uint8Array(update.buffer, update.byteOffset, update.byteLength) : encodeUpdate(coding, update, this.feedback);
    let result: TaskResult = { taskId: meta.taskId, runId: meta.runId, version: meta.version, samples: meta.count, loss, coding: coding.kind };
    if (this.tamper) ({ bytes, meta: result } = this.tamper(bytes, result));
    this.grid.scheduler.result(this.id, result, bytes, (ack) => {
      if (!ack.ok) this.refused.push(ack.error ?? '');
      this.ready();
    });
  }
}

export class MemoryGrid {
  readonly clock = new ManualClock(0);
  readonly port = new MemoryPort();
  readonly scheduler: Scheduler;
  readonly run: Run;
  readonly source: ExampleSource;
  readonly workers = new Map<string, MemoryWorker>();
  private queue: (() => Promise<void>)[] = [];

  constructor(spec: RunSpec, dataset: LoadedDataset, opts: { evalExamples?: number; events?: EventLog } = {}) {
    const evaluator = new Evaluator(dataset.test, opts.evalExamples);
    this.scheduler = new Scheduler({ port: this.port, traffic: this.port.traffic, log: pino({ level: 'silent' }), clock: this.clock, evaluate: (run) => evaluator.evaluate(run.net, run.params), events: opts.events });
    this.run = new Run(spec, dataset.info, 'grid');
    this.scheduler.addRun(this.run);
    const x = featuresAsFloat(dataset.train);
    const f = dataset.train.features;
    this.source = {
      batch: async (indices) => {
        const out = new Float32Array(indices.length * f);
        indices.forEach((idx, i) => out.set(x.subarray(idx * f, (idx + 1) * f), i * f));
        return { x: out, labels: Uint32Array.from(indices, (idx) => dataset.train.y[idx]) };
      },
    };
  }

  addWorker(id: string): MemoryWorker {
    const w = new MemoryWorker(id, this);
    this.workers.set(id, w);
    this.port.connect(id, (msg) => w.receive(msg));
    this.scheduler.join(id, { protocol: PROTOCOL_VERSION, backend: 'cpu', adapter: { vendor: 'test', architecture: '', description: '' } });
    return w;
  }

  removeWorker(id: string): void {
    this.workers.delete(id);
    this.port.disconnect(id);
    this.scheduler.leave(id, 'left');
  }

  enqueue(work: () => Promise<void>): void {
    this.queue.push(work);
  }

  /** Computes queued tasks in order, moving the clock only when none is left, until `until` or the run stops. */
  async runUntil(until: () => boolean, maxMs = 3_600_000): Promise<void> {
    while (!until() && this.run.state === 'running') {
      const work = this.queue.shift();
      if (work) {
        await work();
        continue;
      }
      const next = this.clock.nextAt();
      if (next === undefined || next > maxMs) break;
      this.clock.advanceTo(next);
    }
  }

  close(): void {
    this.scheduler.close();
  }
}
