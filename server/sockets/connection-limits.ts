// Limits on one Engine.IO connection, looked at before Socket.IO decodes its packets: how many
// namespace handshakes it may send, and how many events that no handler takes (events on a
// namespace that accepts none from clients, unknown event names on the workers' namespace,
// acknowledgements the coordinator never asked for). What a worker's own events may do is
// event-limits.ts's; who may join a namespace is each namespace's middleware's.
//
// Without these, one connection could send thousands of handshakes a second (each one a joined
// worker, or a refused admin check with its log line), or events nobody listens to, which cost
// decoding and were never counted against any limit. An honest page joins one or two namespaces
// and sends no such events, so the connection is closed at once when a bucket runs dry.
import type { FastifyBaseLogger } from 'fastify';
import type { Server } from 'socket.io';
import { WORKER_NAMESPACE } from '../../shared/protocol.ts';
import { LIMITED_EVENTS, TokenBucket, type EventLimit } from './event-limits.ts';

export interface ConnectionLimits {
  /** Namespace handshakes (Socket.IO CONNECT packets), whatever their namespace. */
  handshakes: Omit<EventLimit, 'perTask'>;
  /** Events no handler takes: on namespaces without client events, unknown names, stray acks. */
  stray: Omit<EventLimit, 'perTask'>;
}

/**
 * A page joins each namespace once (a reconnection is a new connection); a refused admin or
 * board handshake is retried by hand, not in a loop. The stray allowance only forgives a
 * client of another version sending an event this coordinator no longer knows.
 */
export const CONNECTION_LIMITS: ConnectionLimits = {
  handshakes: { perSec: 0.2, burst: 4 },
  stray: { perSec: 2, burst: 20 },
};

/** The worker events the namespace has handlers for; any other name is stray. */
const WORKER_EVENTS: ReadonlySet<string> = new Set(LIMITED_EVENTS);

/** What one Socket.IO packet (an Engine.IO message's text) is, read from its first characters only. */
export function classifyPacket(text: string): 'handshake' | 'worker-event' | 'stray' | 'other' {
  const type = text.charCodeAt(0) - 48;
  if (type === 0) return 'handshake';
  // EVENT (2), ACK (3), BINARY_EVENT (5), BINARY_ACK (6); the rest (DISCONNECT, garbage) the parser handles.
  if (type !== 2 && type !== 3 && type !== 5 && type !== 6) return 'other';
  if (type === 3 || type === 6) return 'stray';
  let i = 1;
  if (type === 5) {
    while (i < text.length && i < 12 && text[i] !== '-') i++;
    i++;
  }
  let nsp = '/';
  if (text[i] === '/') {
    const comma = text.indexOf(',', i);
    nsp = text.slice(i, comma < 0 ? Math.min(text.length, i + 256) : Math.min(comma, i + 256));
    i = comma < 0 ? text.length : comma + 1;
  }
  if (nsp !== WORKER_NAMESPACE) return 'stray';
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  // ["name", ...: a name the namespace handles; anything else (escapes, another shape) is stray.
  if (text[i] !== '[' || text[i + 1] !== '"') return 'stray';
  const end = text.indexOf('"', i + 2);
  return end > 0 && end - i < 40 && WORKER_EVENTS.has(text.slice(i + 2, end)) ? 'worker-event' : 'stray';
}

interface EngineConn {
  readonly remoteAddress?: string;
  readonly request?: { socket?: { remoteAddress?: string } };
  readonly transport?: { name?: string; socket?: { terminate?: () => void } };
  on(event: 'packet', fn: (p: { type: string; data?: unknown }) => void): void;
  close(discard?: boolean): void;
}

/**
 * Watches every connection of `io`'s engine and closes one that sends too many handshakes or
 * stray events. Call it once, right after creating the server.
 * @example limitConnections(io, app.log);
 */
export function limitConnections(io: Server, log: FastifyBaseLogger, limits: ConnectionLimits = CONNECTION_LIMITS, now: () => number = () => performance.now()): void {
  io.engine.on('connection', (conn: EngineConn) => {
    const t = now();
    const handshakes = new TokenBucket({ ...limits.handshakes, perTask: 0 }, t);
    const stray = new TokenBucket({ ...limits.stray, perTask: 0 }, t);
    let closed = false;
    conn.on('packet', (p) => {
      if (closed || p.type !== 'message' || typeof p.data !== 'string') return;
      const kind = classifyPacket(p.data);
      const bucket = kind === 'handshake' ? handshakes : kind === 'stray' ? stray : null;
      if (!bucket || bucket.take(now())) return;
      closed = true;
      log.warn({ address: conn.remoteAddress ?? conn.request?.socket?.remoteAddress, kind, packet: p.data.slice(0, 80) }, 'connection closed: over its limit of namespace handshakes or stray events');
      // Engine.IO reads no packet after this one; the WebSocket goes at once rather than waiting
      // for a closing handshake behind the sender's flood.
      conn.close(true);
      if (conn.transport?.name === 'websocket') conn.transport.socket?.terminate?.();
    });
  });
}
