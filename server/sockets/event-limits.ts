// Per-socket rate limits on what a worker sends: a token bucket per event kind, refilled by time
// and by the work the coordinator hands out. Deciding what an event means belongs to the
// scheduler; this file only says whether a socket may send one more, and when to cut it off.
import type { TaskMeta } from '../../shared/protocol.ts';

/** The worker events that are rate limited (every event a worker can send). */
export const LIMITED_EVENTS = ['ready', 'result', 'status', 'relay', 'chunk'] as const;
export type LimitedEvent = (typeof LIMITED_EVENTS)[number];

export interface EventLimit {
  /** Tokens added per second, whatever the socket does. */
  perSec: number;
  /** Most tokens held (the largest burst after a quiet spell). */
  burst: number;
  /**
   * Tokens added for each task sent to the socket: an honest worker answers a task with one
   * result, one status and one ready, so these never run dry however fast its tasks are. For
   * `relay` this is per micro-batch of a pipeline stage task.
   */
  perTask: number;
}

export interface WorkerEventLimits {
  events: Record<LimitedEvent, EventLimit>;
  /** A socket still over a limit this long after its first dropped event is cut off. */
  sustainMs: number;
  /** Time without a dropped event that ends a spell over the limit. */
  quietMs: number;
}

/**
 * Sized for honest workers with room to spare. A worker on the smallest model (784-16-10, 16
 * examples a task) on a loaded 2-core machine does about 490 tasks/s, each answered with one
 * ready, one result and one status: per-task credit covers any such pace, and the time-based
 * refill covers what comes without a task (the first ready, a resync, a rename or a new work cap
 * from the page). A pipeline stage relays one activation forward and one gradient backward per
 * micro-batch. Results past CHUNK_BYTES (4 MiB) come in chunks, up to 32 for the largest model
 * (MAX_MODEL_PARAMS float32): the burst holds two of those, the per-task credit one more.
 */
export const WORKER_EVENT_LIMITS: WorkerEventLimits = {
  events: {
    ready: { perSec: 20, burst: 100, perTask: 1 },
    result: { perSec: 20, burst: 100, perTask: 1 },
    status: { perSec: 20, burst: 100, perTask: 1 },
    relay: { perSec: 50, burst: 200, perTask: 2 },
    chunk: { perSec: 8, burst: 64, perTask: 33 },
  },
  sustainMs: 2000,
  quietMs: 1000,
};

/** Defaults with `patch` laid over them, per event kind. */
export function workerEventLimits(patch: Partial<Omit<WorkerEventLimits, 'events'>> & { events?: Partial<Record<LimitedEvent, Partial<EventLimit>>> } = {}): WorkerEventLimits {
  const events = { ...WORKER_EVENT_LIMITS.events };
  for (const e of LIMITED_EVENTS) events[e] = { ...events[e], ...patch.events?.[e] };
  return { ...WORKER_EVENT_LIMITS, ...patch, events };
}

/** 'first-drop': the first event dropped in a spell over a limit (worth one log line). */
export type Admission = 'ok' | 'first-drop' | 'drop' | 'cut';

/** Tokens refilled by time up to a burst, plus credit for work handed out. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: EventLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.last = now;
  }

  take(now: number): boolean {
    // Time refills up to the burst; credit for tasks may stand above it until spent.
    if (this.tokens < this.limit.burst) this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) * this.limit.perSec) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Work handed out: credit on top of the burst, so that a burst right after it still fits. A few
   * tasks' worth may wait (tasks sent back to back); no more, so idling through many tasks buys
   * no flood later.
   */
  credit(n: number): void {
    this.tokens = Math.min(this.limit.burst + 4 * n, this.tokens + n);
  }
}

/**
 * One socket's limits. `admit` is called before anything else looks at an event: 'drop' means
 * ignore it ('first-drop' for the first of a spell), 'cut' that the socket has been over a limit for `sustainMs` and should go.
 * @example const limiter = new SocketLimiter(WORKER_EVENT_LIMITS, performance.now()); if (limiter.admit('status', performance.now()) !== 'ok') return;
 */
export class SocketLimiter {
  private readonly buckets: Record<LimitedEvent, TokenBucket>;
  /** Start of the current spell over a limit, and the last event dropped in it. */
  private overSince: number | null = null;
  private lastDrop = -Infinity;
  /** Events dropped in the current spell, per kind (for the log line). */
  readonly dropped: Record<LimitedEvent, number> = { ready: 0, result: 0, status: 0, relay: 0, chunk: 0 };

  constructor(
    readonly limits: WorkerEventLimits,
    now: number,
  ) {
    this.buckets = {} as Record<LimitedEvent, TokenBucket>;
    for (const e of LIMITED_EVENTS) this.buckets[e] = new TokenBucket(limits.events[e], now);
  }

  /** A task went to this socket: credit the answers an honest worker sends for it. */
  taskSent(task: TaskMeta): void {
    for (const e of LIMITED_EVENTS) {
      const perTask = this.limits.events[e].perTask;
      this.buckets[e].credit(e === 'relay' ? perTask * (task.stage?.microBatches.length ?? 0) : perTask);
    }
  }

  admit(event: LimitedEvent, now: number): Admission {
    if (this.overSince !== null && now - this.lastDrop > this.limits.quietMs) {
      this.overSince = null;
      for (const e of LIMITED_EVENTS) this.dropped[e] = 0;
    }
    if (this.buckets[event].take(now)) return 'ok';
    const first = this.overSince === null;
    this.overSince ??= now;
    this.lastDrop = now;
    this.dropped[event]++;
    if (now - this.overSince >= this.limits.sustainMs) return 'cut';
    return first ? 'first-drop' : 'drop';
  }
}
