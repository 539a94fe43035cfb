// One CPU lane in the page: a Web Worker (started by client/worker/web-lanes.ts) running
// cpu-lane-core.ts.
import { LaneCore, type ToLane } from './cpu-lane-core.ts';

const core = new LaneCore();
const scope = self as unknown as { onmessage: ((e: MessageEvent<ToLane>) => void) | null; postMessage(msg: unknown, transfer: Transferable[]): void };
scope.onmessage = async (e) => {
  const out = await core.handle(e.data);
  if (out) scope.postMessage(out.reply, out.transfer);
};
