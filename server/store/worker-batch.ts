// Worker records on their way to the store: the latest record per (run, worker), written
// together once a second instead of once per message. What a record holds is store.ts's concern.
import type { WorkerRecord } from './store.ts';

/** How long a changed worker record may wait before it is written. */
export const WORKER_FLUSH_MS = 1000;

/**
 * Keeps the newest record of each changed worker until the next flush, so that a worker that
 * changes a thousand times a second (a nickname flood, a tiny model's tasks) costs one pending
 * record and one row write a second, not a write per change. Readers flush first.
 * @example const batch = new WorkerBatch((rows) => writeAll(rows)); batch.save(record); batch.flush();
 */
export class WorkerBatch {
  private readonly pending = new Map<string, WorkerRecord>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Rows written and flushes that wrote any, since the start. */
  readonly written = { rows: 0, flushes: 0 };

  constructor(
    private readonly write: (rows: WorkerRecord[]) => void,
    private readonly flushMs = WORKER_FLUSH_MS,
    /** A timed flush that failed (its rows wait for the next one); an explicit flush throws instead. */
    private readonly onError: (err: unknown) => void = (err) => console.error('crowdtrain: writing worker records failed', err),
  ) {}

  save(w: WorkerRecord): void {
    // Copied: the caller may go on changing the object it passed.
    this.pending.set(`${w.runId}\u0000${w.workerId}`, { ...w });
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        try {
          this.flush();
        } catch (err) {
          this.onError(err);
        }
      }, this.flushMs);
      // A pending write never keeps the process alive; close() flushes it.
      this.timer.unref?.();
    }
  }

  /** Records waiting to be written. */
  get size(): number {
    return this.pending.size;
  }

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending.clear();
    try {
      this.write(rows);
    } catch (err) {
      // Not lost: back in the batch unless a newer record of the same worker came meanwhile.
      for (const w of rows) {
        const key = `${w.runId}\u0000${w.workerId}`;
        if (!this.pending.has(key)) this.pending.set(key, w);
      }
      throw err;
    }
    this.written.rows += rows.length;
    this.written.flushes++;
  }

  /** Forgets what waits for a deleted run. */
  discardRun(runId: string): void {
    for (const [key, w] of this.pending) if (w.runId === runId) this.pending.delete(key);
  }
}
