// The worker port in memory: messages go straight to handlers registered per worker, so tests and
// the virtual-time simulator drive the real round logic without sockets. Payloads are copied,
// as a network would, so a worker can never alias the coordinator's parameters.
import type { ParamsMeta, RelayMeta, RunInfo, RunUpdate, TaskMeta, Welcome } from '../shared/protocol.ts';
import { countTraffic, type Traffic, type WorkerPort } from './worker-port.ts';

export type PortMessage =
  | { kind: 'welcome'; meta: Welcome }
  | { kind: 'run'; meta: RunInfo | null }
  | { kind: 'params'; meta: ParamsMeta; data: Uint8Array }
  | { kind: 'task'; meta: TaskMeta; data: Uint32Array }
  | { kind: 'relay'; meta: RelayMeta; data: Float32Array }
  | { kind: 'cancel'; meta: { taskId: string; reason: string } }
  | { kind: 'run-update'; meta: RunUpdate };

export type PortHandler = (msg: PortMessage) => void;

export class MemoryPort implements WorkerPort {
  private readonly handlers = new Map<string, PortHandler>();
  private readonly runOf = new Map<string, string>();
  readonly traffic: Traffic;

  constructor(traffic: Traffic = { bytesIn: 0, bytesOut: 0 }) {
    this.traffic = traffic;
  }

  /** Where a worker's messages go (register before the scheduler hears of the worker). */
  connect(workerId: string, handler: PortHandler): void {
    this.handlers.set(workerId, handler);
  }

  disconnect(workerId: string): void {
    this.handlers.delete(workerId);
    this.runOf.delete(workerId);
  }

  private send(workerId: string, msg: PortMessage): void {
    this.handlers.get(workerId)?.(msg);
  }

  private members(runId: string): string[] {
    return [...this.runOf].filter(([, r]) => r === runId).map(([w]) => w);
  }

  welcome(workerId: string, w: Welcome): void {
    this.send(workerId, { kind: 'welcome', meta: w });
  }

  assign(workerId: string, run: RunInfo | null): void {
    if (run) this.runOf.set(workerId, run.id);
    else this.runOf.delete(workerId);
    this.send(workerId, { kind: 'run', meta: run });
  }

  params(workerId: string, meta: ParamsMeta, data: ArrayBufferView): void {
    if (!this.handlers.has(workerId)) return;
    countTraffic(this.traffic, meta.runId, 'socketOut', data.byteLength);
    this.send(workerId, { kind: 'params', meta, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() });
  }

  task(workerId: string, meta: TaskMeta, data: Uint32Array): void {
    if (!this.handlers.has(workerId)) return;
    countTraffic(this.traffic, meta.runId, 'socketOut', data.byteLength);
    this.send(workerId, { kind: 'task', meta, data: data.slice() });
  }

  relay(workerId: string, meta: RelayMeta, data: Float32Array): void {
    if (!this.handlers.has(workerId)) return;
    const runId = this.runOf.get(workerId);
    if (runId) countTraffic(this.traffic, runId, 'socketOut', data.byteLength);
    else this.traffic.bytesOut += data.byteLength;
    this.send(workerId, { kind: 'relay', meta, data: data.slice() });
  }

  cancel(workerId: string, c: { taskId: string; reason: string }): void {
    this.send(workerId, { kind: 'cancel', meta: c });
  }

  broadcastParams(runId: string, meta: ParamsMeta, data: ArrayBufferView): void {
    for (const w of this.members(runId)) this.params(w, meta, data);
  }

  broadcastRun(runId: string, run: RunInfo): void {
    for (const w of this.members(runId)) this.send(w, { kind: 'run', meta: run });
  }

  broadcastUpdate(runId: string, u: RunUpdate): void {
    for (const w of this.members(runId)) this.send(w, { kind: 'run-update', meta: u });
  }
}
