// The run event log: joins, leaves, late rounds, rejections, checkpoints, state changes.
// Appended by the scheduler and the admin verbs; kept by the store; streamed to admins.

export type RunEventKind = 'join' | 'leave' | 'late' | 'reject' | 'round-timeout' | 'checkpoint' | 'state' | 'created' | 'resumed' | 'completed' | 'error' | 'check' | 'strike' | 'ban';

export interface RunEvent {
  runId: string;
  /** Milliseconds since the epoch. */
  time: number;
  kind: RunEventKind;
  message: string;
  workerId?: string;
}

export type EventListener = (e: RunEvent) => void;

export class EventLog {
  private listeners = new Set<EventListener>();

  /** `persist` writes the event to the store; listeners (the admin namespace) hear it live. */
  constructor(private readonly persist: (e: RunEvent) => void = () => {}) {}

  append(runId: string, kind: RunEventKind, message: string, workerId?: string): RunEvent {
    const e: RunEvent = { runId, time: Date.now(), kind, message, ...(workerId ? { workerId } : {}) };
    this.persist(e);
    for (const l of this.listeners) l(e);
    return e;
  }

  subscribe(l: EventListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
