// The worker port over the Socket.IO `/worker` namespace: each worker's socket by id, and a room
// per run so that a broadcast is encoded once for all of a run's workers. Parameters past
// CHUNK_BYTES go as `chunk` messages, then the params message naming their stream.
import { randomUUID } from 'node:crypto';
import { toArrayBuffer } from '../../shared/binary.ts';
import { chunkPieces } from '../../shared/chunks.ts';
import { CHUNK_BYTES, type ParamsMeta, type RelayMeta, type RunInfo, type RunUpdate, type TaskMeta, type Welcome } from '../../shared/protocol.ts';
import type { WorkerNamespace, WorkerSocket } from '../scheduler.ts';
import { countTraffic, type Traffic, type WorkerPort } from '../worker-port.ts';

const room = (runId: string) => `run:${runId}`;

export class SocketPort implements WorkerPort {
  private readonly sockets = new Map<string, WorkerSocket>();
  /** The run each worker serves (for counting its relays). */
  private readonly runOf = new Map<string, string>();

  constructor(
    private readonly ns: WorkerNamespace,
    private readonly traffic: Traffic,
  ) {}

  attach(workerId: string, socket: WorkerSocket): void {
    this.sockets.set(workerId, socket);
  }

  detach(workerId: string): void {
    this.sockets.delete(workerId);
    this.runOf.delete(workerId);
  }

  welcome(workerId: string, w: Welcome): void {
    this.sockets.get(workerId)?.emit('welcome', w);
  }

  assign(workerId: string, run: RunInfo | null, previousRunId: string | null): void {
    if (run) this.runOf.set(workerId, run.id);
    else this.runOf.delete(workerId);
    const s = this.sockets.get(workerId);
    if (!s) return;
    if (previousRunId) void s.leave(room(previousRunId));
    if (run) void s.join(room(run.id));
    s.emit('run', run);
  }

  params(workerId: string, meta: ParamsMeta, data: ArrayBufferView): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    countTraffic(this.traffic, meta.runId, 'socketOut', data.byteLength);
    this.emitParams((event, ...args) => s.emit(event as 'params', ...(args as [ParamsMeta, ArrayBuffer])), meta, data);
  }

  /** Emits params, in chunks when the binary is past CHUNK_BYTES (one target or a room). */
  private emitParams(emit: (event: 'params' | 'chunk', ...args: unknown[]) => void, meta: ParamsMeta, data: ArrayBufferView): void {
    if (data.byteLength <= CHUNK_BYTES) return emit('params', meta, toArrayBuffer(data));
    const stream = randomUUID().slice(0, 12);
    for (const piece of chunkPieces(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), stream)) emit('chunk', piece.meta, toArrayBuffer(piece.data));
    emit('params', { ...meta, chunks: stream }, new ArrayBuffer(0));
  }

  task(workerId: string, meta: TaskMeta, data: Uint32Array): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    countTraffic(this.traffic, meta.runId, 'socketOut', data.byteLength);
    s.emit('task', meta, toArrayBuffer(data));
  }

  relay(workerId: string, meta: RelayMeta, data: Float32Array): void {
    const s = this.sockets.get(workerId);
    if (!s) return;
    const runId = this.runOf.get(workerId);
    if (runId) countTraffic(this.traffic, runId, 'socketOut', data.byteLength);
    else this.traffic.bytesOut += data.byteLength;
    s.emit('relay', meta, toArrayBuffer(data));
  }

  cancel(workerId: string, c: { taskId: string; reason: string }): void {
    this.sockets.get(workerId)?.emit('cancel', c);
  }

  broadcastParams(runId: string, meta: ParamsMeta, data: ArrayBufferView): void {
    const members = this.ns.adapter.rooms.get(room(runId))?.size ?? 0;
    countTraffic(this.traffic, runId, 'socketOut', data.byteLength * members);
    const target = this.ns.to(room(runId));
    this.emitParams((event, ...args) => target.emit(event as 'params', ...(args as [ParamsMeta, ArrayBuffer])), meta, data);
  }

  broadcastRun(runId: string, run: RunInfo): void {
    this.ns.to(room(runId)).emit('run', run);
  }

  broadcastUpdate(runId: string, u: RunUpdate): void {
    this.ns.to(room(runId)).emit('run-update', u);
  }
}
