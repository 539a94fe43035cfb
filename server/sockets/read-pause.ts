// Backpressure on one worker's connection: stop reading from its TCP socket for a moment. What is
// dropped, and when a worker is cut off, is decided in event-limits.ts and the namespace.
//
// Dropping an event costs little, but decoding it does not: a socket can queue 100,000 messages a
// second, and the coordinator would spend its event loop decoding them only to drop them. While
// reading is paused the messages stay in the kernel, the sender's buffers fill, and its flood
// costs the coordinator nothing.
import type { Socket } from 'socket.io';

/** How long reading stays paused after an event over the limit. */
export const READ_PAUSE_MS = 100;

/** The part of ws's WebSocket used here (engine.io's websocket transport holds one as `socket`). */
interface Pausable {
  pause(): void;
  resume(): void;
  terminate(): void;
}

function pausableOf(socket: Socket): Pausable | undefined {
  const transport = socket.conn.transport as unknown as { name?: string; socket?: Partial<Pausable> };
  const ws = transport.name === 'websocket' ? transport.socket : undefined;
  return typeof ws?.pause === 'function' && typeof ws.resume === 'function' && typeof ws.terminate === 'function' ? (ws as Pausable) : undefined;
}

/**
 * Pauses reading from `socket`'s connection for `ms` (once: a call while paused does nothing).
 * Events already read still arrive; nothing more is read until the pause ends.
 * @example if (limiter.admit('status', now) !== 'ok') pauser.pause();
 */
export class ReadPause {
  private timer: ReturnType<typeof setTimeout> | undefined;

  private readonly ws: Pausable | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly ms = READ_PAUSE_MS,
  ) {
    // Read once: the transport of a websocket-only client never changes.
    this.ws = pausableOf(socket);
  }

  pause(): void {
    const ws = this.ws;
    if (this.timer !== undefined || !ws || !this.socket.connected) return;
    ws.pause();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      ws.resume();
    }, this.ms);
    this.timer.unref?.();
  }

  /** Forgets a pending resume (the socket has gone). */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Drops the connection at once, after a disconnect: a closing handshake would wait for the
   * peer's close frame behind its paused flood (ws gives up only after 30 s).
   */
  terminate(): void {
    this.clear();
    this.ws?.terminate();
  }
}
