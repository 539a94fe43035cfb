// The worker port over the Socket.IO `/worker` namespace: each worker's socket by id, and a room
// per run so that a broadcast is encoded once for all of a run's workers.
import { toArrayBuffer } from '../../shared/binary.ts';
import type { ParamsMeta, RelayMeta, RunInfo, RunUpdate, TaskMeta, Welcome } from '../../shared/protocol.ts';
import type { WorkerNamespace, WorkerSocket } from '../scheduler.ts';
import type { Traffic, WorkerPort } from '../worker-port.ts';

const room = (runId: string) => `run:${runId}`;

export class SocketPort implements WorkerPort {
  private readonly sockets = new Map<string, WorkerSocket>();

  constructor(
    private readonly ns: WorkerNamespace,
    private readonly traffic: Traffic,
  ) {}

  attach(workerId: string, socket: WorkerSocket): void {
    this.sockets.set(workerId, socket);
  }

  detach(workerId: string): void {
    this.sockets.delete(workerId);
  }

  welcome(workerId: string, w: Welcome): void {
    this.sockets.get(workerId)?.emit('welcome', w);
  }

  assign(workerId: string, run: RunInfo | null, previousRunId: string | null): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    if (previousRunId) void s.leave(room(previousRunId));
    if (run) void s.join(room(run.id));
    s.emit('run', run);
  }

  params(workerId: string, meta: ParamsMeta, data: Float32Array): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    this.traffic.bytesOut += data.byteLength;
    s.emit('params', meta, toArrayBuffer(data));
  }

  task(workerId: string, meta: TaskMeta, data: Uint32Array): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    this.traffic.bytesOut += data.byteLength;
    s.emit('task', meta, toArrayBuffer(data));
  }

  relay(workerId: string, meta: RelayMeta, data: Float32Array): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    this.traffic.bytesOut += data.byteLength;
    s.emit('relay', meta, toArrayBuffer(data));
  }

  cancel(workerId: string, c: { taskId: string; reason: string }): void {
    this.sockets.get(workerId)?.emit('cancel', c);
  }

  broadcastParams(runId: string, meta: ParamsMeta, data: Float32Array): void {
    const members = this.ns.adapter.rooms.get(room(runId))?.size ?? 0;
    this.traffic.bytesOut += data.byteLength * members;
    this.ns.to(room(runId)).emit('params', meta, toArrayBuffer(data));
  }

  broadcastRun(runId: string, run: RunInfo): void {
    this.ns.to(room(runId)).emit('run', run);
  }

  broadcastUpdate(runId: string, u: RunUpdate): void {
    this.ns.to(room(runId)).emit('run-update', u);
  }
}
