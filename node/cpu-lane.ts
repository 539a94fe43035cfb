// One CPU lane's thread in Node (started by node/cpu-lanes.ts): client/worker/cpu-lane-core.ts
// on a worker_threads port.
import { parentPort } from 'node:worker_threads';
import { LaneCore, type ToLane } from '../client/worker/cpu-lane-core.ts';

const port = parentPort!;
const core = new LaneCore();
port.on('message', async (msg: ToLane) => {
  const out = await core.handle(msg);
  if (out) port.postMessage(out.reply, out.transfer);
});
