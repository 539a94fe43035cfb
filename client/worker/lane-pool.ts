// CPU lanes behind message ports (Node worker threads or the page's Web Workers), as one LanePool:
// each lane is told the model once, then parameters either through one SharedArrayBuffer the main
// thread writes between tasks (a version number tells each lane to reload it) or, where memory
// cannot be shared (a page that is not cross-origin isolated), as a copy to each lane. Batches go
// to a lane as buffers it then owns; gradients come back transferred.
import type { LayerConfig } from '../../shared/layers/layer.ts';
import type { GradientResult } from './backend.ts';
import type { FromLane, ToLane } from './cpu-lane-core.ts';
import type { LanePool } from './threaded-backend.ts';

/** One lane's end of its channel. */
export interface LaneEndpoint {
  post(msg: ToLane, transfer?: Transferable[]): void;
  listen(onMessage: (m: FromLane) => void, onFail: (err: Error) => void): void;
  terminate(): void;
}

export interface LaneModel {
  layers: LayerConfig[];
  inputShape: number[];
  /** Most examples a task's gradients() call takes (each lane takes its share). */
  maxBatch: number;
  paramCount: number;
}

export class MessageLanePool implements LanePool {
  private readonly shared: Float32Array | null;
  private version = 0;
  private readonly pending = new Map<number, { resolve: (r: GradientResult) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private dead: Error | null = null;

  constructor(
    private readonly lanes: LaneEndpoint[],
    model: LaneModel,
    share: boolean,
  ) {
    if (lanes.length === 0) throw new RangeError('a lane pool needs at least one lane');
    const buffer = share ? new SharedArrayBuffer(4 * model.paramCount) : null;
    this.shared = buffer ? new Float32Array(buffer) : null;
    const laneBatch = Math.ceil(model.maxBatch / lanes.length);
    for (const lane of lanes) {
      lane.listen(
        (m) => {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.type === 'result') p.resolve({ loss: m.loss, grads: m.grads });
          else p.reject(new Error(`CPU lane: ${m.message}`));
        },
        (err) => this.fail(err),
      );
      lane.post({ type: 'init', layers: model.layers, inputShape: model.inputShape, maxBatch: laneBatch, ...(buffer ? { params: buffer } : {}) });
    }
  }

  get size(): number {
    return this.lanes.length;
  }

  setParams(params: Float32Array): void {
    // No lane is computing now: the backend awaits every lane before it sets parameters again.
    this.version++;
    if (this.shared) return void this.shared.set(params);
    for (const lane of this.lanes) lane.post({ type: 'params', version: this.version, params: params.slice() });
  }

  gradients(lane: number, x: Float32Array, labels: Uint8Array | Int32Array | Float32Array, batch: number): Promise<GradientResult> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.lanes[lane].post({ type: 'gradients', id, version: this.version, x, labels, batch }, [x.buffer as ArrayBuffer, labels.buffer as ArrayBuffer]);
    });
  }

  dispose(): void {
    this.fail(new Error('the CPU lanes were stopped'));
    for (const lane of this.lanes) lane.terminate();
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
