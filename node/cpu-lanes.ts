// The CPU backend's lanes in Node: one worker_threads thread each (node/cpu-lane.ts), holding its
// own CPU layer executor. The parameters are shared, not copied per thread: one
// SharedArrayBuffer that the main thread writes between tasks, with a version number that tells
// each lane when to reload them. Batches go to a lane as buffers it then owns; gradients come
// back as transferred buffers.
import type { Worker } from 'node:worker_threads';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { startTsThread } from '../server/ts-thread.ts';
import type { LanePool } from '../client/worker/threaded-backend.ts';
import type { GradientResult } from '../client/worker/backend.ts';

/** What the main thread sends a lane. */
export type ToLane =
  | { type: 'init'; layers: LayerConfig[]; inputShape: number[]; maxBatch: number; params: SharedArrayBuffer }
  | { type: 'gradients'; id: number; version: number; x: Float32Array; labels: Uint8Array | Int32Array | Float32Array; batch: number };

/** What a lane answers, once per 'gradients'. */
export type FromLane = { type: 'result'; id: number; loss: number; grads: Float32Array } | { type: 'error'; id: number; message: string };

const ENTRY = new URL('./cpu-lane.ts', import.meta.url);

interface Pending {
  resolve: (r: GradientResult) => void;
  reject: (e: Error) => void;
}

/**
 * `threads` lanes for a model, sharing one copy of its parameters.
 * @example const backend = new ThreadedCpuBackend(model, 64, new CpuThreadPool(3, run.layers, run.inputShape, 64, model.paramCount));
 */
export class CpuThreadPool implements LanePool {
  private readonly shared: Float32Array;
  private version = 0;
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private dead: Error | null = null;

  constructor(threads: number, layers: LayerConfig[], inputShape: number[], maxBatch: number, paramCount: number) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a whole number ≥ 1, got ${threads}`);
    const buffer = new SharedArrayBuffer(4 * paramCount);
    this.shared = new Float32Array(buffer);
    const laneBatch = Math.ceil(maxBatch / threads);
    this.workers = Array.from({ length: threads }, () => {
      const worker = startTsThread(ENTRY);
      worker.on('message', (m: FromLane) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.type === 'result') p.resolve({ loss: m.loss, grads: m.grads });
        else p.reject(new Error(`CPU thread: ${m.message}`));
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => this.fail(new Error(`a CPU thread exited with code ${code}`)));
      const init: ToLane = { type: 'init', layers, inputShape, maxBatch: laneBatch, params: buffer };
      worker.postMessage(init);
      return worker;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  setParams(params: Float32Array): void {
    // No lane is computing here: the backend awaits every lane before it sets parameters again.
    this.shared.set(params);
    this.version++;
  }

  gradients(lane: number, x: Float32Array, labels: Uint8Array | Int32Array | Float32Array, batch: number): Promise<GradientResult> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const msg: ToLane = { type: 'gradients', id, version: this.version, x, labels, batch };
      this.workers[lane].postMessage(msg, [x.buffer as ArrayBuffer, labels.buffer as ArrayBuffer]);
    });
  }

  dispose(): void {
    this.fail(new Error('the CPU threads were stopped'));
    for (const w of this.workers) void w.terminate();
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
