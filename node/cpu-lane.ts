// One CPU lane's thread (started by node/cpu-lanes.ts): a CPU layer executor for the model, which
// reloads the shared parameters when their version moved and answers each batch's mean-loss
// gradient. It knows nothing of tasks or runs.
import { parentPort } from 'node:worker_threads';
import { CpuLayerExecutor } from '../shared/cpu/layer-executor.ts';
import { describeModel } from '../shared/layers/sequence.ts';
import type { FromLane, ToLane } from './cpu-lanes.ts';

const port = parentPort!;
let exec: CpuLayerExecutor | null = null;
let params: Float32Array | null = null;
let loaded = -1;

port.on('message', async (msg: ToLane) => {
  if (msg.type === 'init') {
    exec = new CpuLayerExecutor(describeModel(msg.layers, msg.inputShape), { maxBatch: msg.maxBatch });
    params = new Float32Array(msg.params);
    loaded = -1;
    return;
  }
  let reply: FromLane;
  const transfer: ArrayBuffer[] = [];
  try {
    if (!exec || !params) throw new Error('gradients asked before the model was set');
    if (loaded !== msg.version) {
      exec.setParams(params);
      loaded = msg.version;
    }
    const { loss, grads } = await exec.computeGradients(msg.x, msg.labels, msg.batch);
    const out = grads.slice();
    transfer.push(out.buffer);
    reply = { type: 'result', id: msg.id, loss, grads: out };
  } catch (err) {
    reply = { type: 'error', id: msg.id, message: (err as Error).message };
  }
  port.postMessage(reply, transfer);
});
