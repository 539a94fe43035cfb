// What a run's robust aggregation keeps from one round to the next: centered clipping's centre,
// each worker's momentum, and a pool of result buffers reused across rounds. One per run (and per
// length); the rules themselves live in the files beside this one.

/** Rounds a worker's momentum is kept without a result from it; it starts from zero after that. */
export const MOMENTUM_KEPT_ROUNDS = 64;

interface WorkerMomentum {
  values: Float32Array;
  /** The round (AggregationState.rounds) it was last updated in. */
  round: number;
  /** Results folded into it since it started from zero (for its bias correction). */
  steps: number;
}

export class AggregationState {
  /** centered-clip: the previous round's aggregate, where the next round starts (null before the first). */
  center: Float32Array | null = null;
  /** Rounds aggregated so far. */
  rounds = 0;
  private readonly momenta = new Map<string, WorkerMomentum>();
  private readonly free: Float32Array[] = [];

  constructor(readonly length: number) {}

  /** A zeroed buffer of `length` values, from the pool when one is there. */
  take(): Float32Array {
    const buf = this.free.pop();
    if (!buf) return new Float32Array(this.length);
    buf.fill(0);
    return buf;
  }

  /** Returns a buffer to the pool. */
  give(buf: Float32Array): void {
    if (buf.length !== this.length) throw new RangeError(`a buffer of ${buf.length} values cannot join a pool of ${this.length}`);
    this.free.push(buf);
  }

  /** The worker's momentum m_i (undefined before its first result, or after it was forgotten). */
  momentumOf(workerId: string): Float32Array | undefined {
    return this.momenta.get(workerId)?.values;
  }

  /** Results folded into the worker's momentum so far (0 before its first, or after it was forgotten). */
  momentumSteps(workerId: string): number {
    return this.momenta.get(workerId)?.steps ?? 0;
  }

  /** Records that `values` is the worker's momentum as of this round, after `steps` results. */
  setMomentum(workerId: string, values: Float32Array, steps = 1): void {
    this.momenta.set(workerId, { values, round: this.rounds, steps });
  }

  /**
   * Drops a worker's momentum (it left the run). Its buffer is left to the garbage collector, not
   * pooled: the open round may still hold it as the worker's vote.
   */
  forget(workerId: string): void {
    this.momenta.delete(workerId);
  }

  /** Workers whose momentum is kept. */
  get workers(): number {
    return this.momenta.size;
  }

  /** Buffers waiting in the pool. */
  get pooled(): number {
    return this.free.length;
  }

  /**
   * Closes a round that used `buffers` result buffers: momenta not updated for
   * MOMENTUM_KEPT_ROUNDS are dropped, and the pool keeps no more buffers than the round used,
   * so that one crowded round does not hold its memory for the rest of the run.
   */
  endRound(buffers: number): void {
    this.rounds++;
    for (const [id, m] of this.momenta) {
      if (this.rounds - 1 - m.round > MOMENTUM_KEPT_ROUNDS) {
        this.momenta.delete(id);
        this.free.push(m.values);
      }
    }
    if (this.free.length > buffers) this.free.length = buffers;
  }
}
