// The worker registry: one record per connected worker (what it said at join, where it is in its
// run, what it has done, and how fast the coordinator has measured it to be). It knows nothing of
// sockets: the round logic reaches workers only through the port (worker-port.ts).
import type { Placement, WorkerHello } from '../shared/protocol.ts';

/**
 * A worker's examples per second as the coordinator times it: from sending a task to receiving
 * its result, transfers included. A worker's own claim is never used to size its work.
 */
export class SpeedEstimate {
  /** Examples/s; 0 until a task has been timed. */
  perSec = 0;
  /** Tasks timed so far. */
  samples = 0;
  /** Decayed sums of examples and milliseconds (halved at each task: recent tasks weigh most). */
  private examples = 0;
  private ms = 0;

  /**
   * Folds one timed task in. Sums, not an average of rates: a small task's rate is mostly its
   * transfer time, and averaging rates would let a few small tasks drag a fast worker's figure down.
   */
  observe(examples: number, ms: number): void {
    if (!(examples > 0) || !(ms > 0)) return;
    this.examples = this.examples * 0.5 + examples;
    this.ms = this.ms * 0.5 + ms;
    this.perSec = (this.examples * 1000) / this.ms;
    this.samples++;
  }

  get known(): boolean {
    return this.samples > 0;
  }
}

export interface WorkerEntry {
  id: string;
  hello: WorkerHello;
  runId: string | null;
  /** Holds params@version and wants a task. */
  ready: boolean;
  version: number;
  /** Newest parameter version sent to this worker (directly or by broadcast). */
  paramsSent: number;
  paused: boolean;
  joinedAt: number;
  lastSeen: number;
  tasksDone: number;
  samples: number;
  rejected: number;
  /** The worker's own figure, shown to people; never used to size work. */
  samplesPerSec: number;
  /** The coordinator's measurement of the worker, used to size its tasks. */
  speed: SpeedEstimate;
  /** Rounds in a row it was ready for and got no task in (the batch policy re-measures it after a few). */
  satOut: number;
  /** Pipeline runs: the stage of the replica it holds now (null: a standby, or a data-parallel run). */
  placement: Placement | null;
  /** Bytes it reported allocating for its model or stage. */
  allocatedBytes?: number;
  /** Its speeds measured on runs it served before (examples/s of one model are not of another's): kept for when it moves back. */
  speedsByRun: Map<string, SpeedEstimate>;
  /** The run it last moved away from (server/grid-shares.ts): a late result for that run is not its fault. */
  movedFrom: string | null;
}

export class WorkerRegistry {
  private readonly byId = new Map<string, WorkerEntry>();

  add(id: string, hello: WorkerHello, now: number): WorkerEntry {
    const w: WorkerEntry = {
      id,
      hello,
      runId: null,
      ready: false,
      version: -1,
      paramsSent: -1,
      paused: false,
      joinedAt: now,
      lastSeen: now,
      tasksDone: 0,
      samples: 0,
      rejected: 0,
      samplesPerSec: 0,
      speed: new SpeedEstimate(),
      satOut: 0,
      placement: null,
      speedsByRun: new Map(),
      movedFrom: null,
    };
    this.byId.set(id, w);
    return w;
  }

  get(id: string): WorkerEntry | undefined {
    return this.byId.get(id);
  }

  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  values(): IterableIterator<WorkerEntry> {
    return this.byId.values();
  }

  [Symbol.iterator](): IterableIterator<WorkerEntry> {
    return this.byId.values();
  }

  /** The workers serving a run, oldest first. */
  of(runId: string): WorkerEntry[] {
    const out: WorkerEntry[] = [];
    for (const w of this.byId.values()) if (w.runId === runId) out.push(w);
    return out;
  }
}
