// The narrow port through which the round logic reaches workers: send a task, parameters, a
// relay or a cancel, tell a worker its run, broadcast to a run's workers. The Socket.IO namespace
// implements it (sockets/socket-port.ts); an in-memory one (memory-port.ts) serves tests and the
// virtual-time simulator. Payload bytes are counted here, once, for the traffic metrics.
import type { ParamsMeta, RelayMeta, RunInfo, RunUpdate, TaskMeta, Welcome } from '../shared/protocol.ts';

export interface WorkerPort {
  welcome(workerId: string, w: Welcome): void;
  /** Tells the worker which run it serves now (null: none) and puts it in that run's broadcasts. */
  assign(workerId: string, run: RunInfo | null, previousRunId: string | null): void;
  /** Parameters in the form the meta names (float32 values, a coded delta, or nothing for a snapshot). */
  params(workerId: string, meta: ParamsMeta, data: ArrayBufferView): void;
  task(workerId: string, meta: TaskMeta, data: Uint32Array): void;
  relay(workerId: string, meta: RelayMeta, data: Float32Array): void;
  cancel(workerId: string, c: { taskId: string; reason: string }): void;
  /** To every worker of the run. */
  broadcastParams(runId: string, meta: ParamsMeta, data: ArrayBufferView): void;
  broadcastRun(runId: string, run: RunInfo): void;
  broadcastUpdate(runId: string, u: RunUpdate): void;
}

/** Tensor payload bytes that crossed the port, each direction (results and relays in, the rest out). */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  /** The same by run, and by layer (socket messages, HTTP snapshots). */
  runs?: Map<string, RunTraffic>;
}

/** Bytes a run's workers sent (`in`) and were sent (`out`), at the socket and HTTP layers. */
export interface RunTraffic {
  socketIn: number;
  socketOut: number;
  httpOut: number;
}

/** Counts `bytes` for a run in one direction and layer (and in the totals). */
export function countTraffic(traffic: Traffic, runId: string, what: keyof RunTraffic, bytes: number): void {
  if (what === 'socketIn') traffic.bytesIn += bytes;
  else traffic.bytesOut += bytes;
  traffic.runs ??= new Map();
  let t = traffic.runs.get(runId);
  if (!t) traffic.runs.set(runId, (t = { socketIn: 0, socketOut: 0, httpOut: 0 }));
  t[what] += bytes;
}
