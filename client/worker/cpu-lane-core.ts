// What one CPU lane does, in a Node worker thread (node/cpu-lane.ts) or a Web Worker
// (client/worker/cpu-lane.worker.ts) alike: it holds a CPU layer executor for the model, takes
// parameters (a shared buffer that it reloads when their version moved, or a copy), and answers
// each batch's mean-loss gradient. It knows nothing of tasks or runs.
import { CpuLayerExecutor } from '../../shared/cpu/layer-executor.ts';
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { describeModel } from '../../shared/layers/sequence.ts';

/** What the main thread sends a lane. */
export type ToLane =
  | { type: 'init'; layers: LayerConfig[]; inputShape: number[]; maxBatch: number; params?: SharedArrayBuffer }
  | { type: 'params'; version: number; params: Float32Array }
  | { type: 'gradients'; id: number; version: number; x: Float32Array; labels: Uint8Array | Int32Array | Float32Array; batch: number };

/** What a lane answers, once per 'gradients'. */
export type FromLane = { type: 'result'; id: number; loss: number; grads: Float32Array } | { type: 'error'; id: number; message: string };

export class LaneCore {
  private exec: CpuLayerExecutor | null = null;
  private shared: Float32Array | null = null;
  private loaded = -1;

  /** Handles one message; a 'gradients' one resolves with the answer and the buffers to transfer. */
  async handle(msg: ToLane): Promise<{ reply: FromLane; transfer: ArrayBuffer[] } | null> {
    if (msg.type === 'init') {
      this.exec = new CpuLayerExecutor(describeModel(msg.layers, msg.inputShape), { maxBatch: msg.maxBatch });
      this.shared = msg.params ? new Float32Array(msg.params) : null;
      this.loaded = -1;
      return null;
    }
    if (msg.type === 'params') {
      this.exec?.setParams(msg.params);
      this.loaded = msg.version;
      return null;
    }
    try {
      if (!this.exec) throw new Error('gradients asked before the model was set');
      if (this.loaded !== msg.version) {
        if (!this.shared) throw new Error(`parameters of version ${msg.version} never came`);
        this.exec.setParams(this.shared);
        this.loaded = msg.version;
      }
      const { loss, grads } = await this.exec.computeGradients(msg.x, msg.labels, msg.batch);
      const out = grads.slice();
      return { reply: { type: 'result', id: msg.id, loss, grads: out }, transfer: [out.buffer] };
    } catch (err) {
      return { reply: { type: 'error', id: msg.id, message: (err as Error).message }, transfer: [] };
    }
  }
}
