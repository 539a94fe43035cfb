// One pipeline task on a worker: its stage of one replica, micro-batch by micro-batch (GPipe).
// The first stage feeds data forward; a middle stage turns each activation it receives into the
// next and each gradient into the previous; the last stage turns each activation into a loss and
// a gradient. When every micro-batch has come back, the stage's gradient is the result.
import type { RelayMeta, StageTask, TaskMeta } from '../../shared/protocol.ts';
import type { StageBackend } from './stage-backend.ts';

export interface StageTaskIo {
  /** Sends an activation (forward) or activation gradient (backward) towards the neighbour stage. */
  relay(meta: RelayMeta, data: Float32Array): void;
  /** Inputs [n, ...example shape] of examples (first stage only). */
  batch(indices: Uint32Array): Promise<{ x: Float32Array }>;
}

export interface StageOutcome {
  grads: Float32Array;
  /** Mean loss over the replica's examples (last stage), else 0. */
  loss: number;
  /** Milliseconds spent computing (not waiting for neighbours). */
  computeMs: number;
}

export class StageTaskRunner {
  readonly stage: StageTask;
  private readonly offsets: number[];
  private chain: Promise<void> = Promise.resolve();
  private backwardsDone = 0;
  private lossSum = 0;
  private busyMs = 0;
  private cancelled = false;
  private settle!: { resolve: (o: StageOutcome) => void; reject: (e: Error) => void };
  /** Resolves with the stage gradient once every micro-batch has gone forward and back. */
  readonly done: Promise<StageOutcome>;

  constructor(
    readonly meta: TaskMeta & { stage: StageTask },
    /** Example indices (first stage), labels (last stage), nothing in between. */
    private readonly data: Uint32Array,
    private readonly backend: StageBackend,
    private readonly io: StageTaskIo,
  ) {
    this.stage = meta.stage;
    this.offsets = [0];
    for (const m of this.stage.microBatches) this.offsets.push(this.offsets[this.offsets.length - 1] + m);
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    backend.begin(this.stage.microBatches);
  }

  get taskId(): string {
    return this.meta.taskId;
  }

  private get first(): boolean {
    return this.stage.index === 0;
  }

  private get last(): boolean {
    return this.stage.index === this.stage.stages - 1;
  }

  /** Runs `fn` after everything queued before it, timing it; a failure fails the task. */
  private then(fn: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.cancelled) return;
      const t0 = performance.now();
      try {
        await fn();
      } catch (err) {
        this.cancelled = true;
        this.settle.reject(err as Error);
      }
      this.busyMs += performance.now() - t0;
    });
  }

  /** The first stage starts the round: every micro-batch forward. */
  start(): void {
    if (!this.first) return;
    this.then(async () => {
      const { x } = await this.io.batch(this.data);
      const width = x.length / this.data.length;
      for (let mb = 0; mb < this.stage.microBatches.length; mb++) {
        if (this.cancelled) return;
        const y = await this.backend.forward(mb, x.subarray(this.offsets[mb] * width, this.offsets[mb + 1] * width));
        this.io.relay({ taskId: this.taskId, mb, kind: 'activation' }, y);
      }
    });
  }

  /** An activation from the previous stage or a gradient from the next one. */
  receive(meta: RelayMeta, values: Float32Array): void {
    const { mb } = meta;
    if (meta.kind === 'activation') {
      this.then(async () => {
        if (!this.last) {
          this.io.relay({ taskId: this.taskId, mb, kind: 'activation' }, await this.backend.forward(mb, values));
          return;
        }
        // A language model's examples have one label per position: the data holds them all, in order.
        const per = this.data.length / this.offsets[this.offsets.length - 1];
        const labels = this.data.subarray(this.offsets[mb] * per, this.offsets[mb + 1] * per);
        const { loss, dx } = await this.backend.forwardBackwardLast(mb, values, labels);
        this.lossSum += loss * this.stage.microBatches[mb];
        if (dx) this.io.relay({ taskId: this.taskId, mb, kind: 'gradient' }, dx);
        await this.backwardDone();
      });
    } else {
      this.then(async () => {
        const dx = await this.backend.backward(mb, values);
        if (dx) this.io.relay({ taskId: this.taskId, mb, kind: 'gradient' }, dx);
        await this.backwardDone();
      });
    }
  }

  private async backwardDone(): Promise<void> {
    if (++this.backwardsDone < this.stage.microBatches.length) return;
    const grads = await this.backend.gradients();
    const total = this.offsets[this.offsets.length - 1];
    this.settle.resolve({ grads, loss: this.last ? this.lossSum / total : 0, computeMs: this.busyMs });
  }

  /** The round was abandoned: stop, and never resolve. */
  cancel(): void {
    this.cancelled = true;
  }
}
