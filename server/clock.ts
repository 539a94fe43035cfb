// Time for the coordinator's round logic: the system clock in production, a manual clock in
// tests and the virtual-time simulator (advance it instead of sleeping). Nothing that decides a
// round, a lease or a pace reads Date.now() or calls setTimeout directly.

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

export interface Clock {
  /** Milliseconds since the epoch (or since the simulation began). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Calls fn every `ms` until cleared (with clearTimeout). */
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (h) => {
    if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
};

interface ManualTimer {
  id: number;
  at: number;
  fn: () => void;
  every?: number;
}

/**
 * A clock that moves only when told. Timers fire in time order (ties in the order they were
 * set) as `advance` passes them; a timer set by a firing timer fires in the same advance when due.
 * @example const clock = new ManualClock(0); clock.setTimeout(f, 100); clock.advance(100); // f ran
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, ManualTimer>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.t + Math.max(0, ms), fn });
    return { id };
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    if (!(ms > 0)) throw new RangeError(`interval must be > 0 ms, got ${ms}`);
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.t + ms, fn, every: ms });
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle && typeof handle === 'object' && 'id' in handle) this.timers.delete(handle.id as number);
  }

  /** Time of the earliest pending timer, or undefined when none is set. */
  nextAt(): number | undefined {
    let best: ManualTimer | undefined;
    for (const tm of this.timers.values()) if (!best || tm.at < best.at || (tm.at === best.at && tm.id < best.id)) best = tm;
    return best?.at;
  }

  /** Pending timers (tests assert that nothing is left behind). */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }

  /** Moves time to `t` (never backwards), firing due timers in order. */
  advanceTo(t: number): void {
    for (;;) {
      let due: ManualTimer | undefined;
      for (const tm of this.timers.values()) if (tm.at <= t && (!due || tm.at < due.at || (tm.at === due.at && tm.id < due.id))) due = tm;
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      if (due.every) due.at += due.every;
      else this.timers.delete(due.id);
      due.fn();
    }
    this.t = Math.max(this.t, t);
  }
}
