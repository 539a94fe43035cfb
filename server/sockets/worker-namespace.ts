// The workers' Socket.IO namespace: refuses a handshake from a foreign page, over long-polling, of
// another protocol version, with a malformed hello, of a browser banned from the run, or past the cap on sockets per
// address; tells a worker banned mid-run why and closes its socket; rate-limits, validates
// every message against shared/protocol.ts, and hands it to the scheduler. A bad message gets an
// error back; it never throws into the coordinator.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { ChunkAssembler, ChunkError } from '../../shared/chunks.ts';
import { ChunkMetaSchema, describeIssues, PROTOCOL_VERSION, ReadySchema, RelaySchema, TaskResultSchema, WorkerHelloSchema, WorkerStatusSchema, type RefusalData, type TaskMeta } from '../../shared/protocol.ts';
import { MAX_MODEL_PARAMS } from '../../shared/run-spec.ts';
import type { Scheduler, WorkerNamespace, WorkerSocket } from '../scheduler.ts';
import { AddressCap, MAX_WORKERS_PER_ADDRESS } from './address-cap.ts';
import { SocketLimiter, WORKER_EVENT_LIMITS, type LimitedEvent, type WorkerEventLimits } from './event-limits.ts';
import { normalizeOrigins, originRefusal } from './origin-check.ts';
import { ReadPause } from './read-pause.ts';
import type { SocketPort } from './socket-port.ts';

export interface WorkerNamespaceOptions {
  /** Most worker sockets open at once from one remote address (default MAX_WORKERS_PER_ADDRESS). */
  maxWorkersPerAddress?: number;
  /** Page origins besides the coordinator's own whose tabs may join as workers. */
  allowedOrigins?: readonly string[];
  /** Per-socket event limits (default WORKER_EVENT_LIMITS). */
  limits?: WorkerEventLimits;
  /** Milliseconds for the rate limits, monotonic (default performance.now; tests inject one). */
  now?: () => number;
}

function refuse(data: RefusalData): Error & { data: RefusalData } {
  return Object.assign(new Error(data.message), { data });
}

export function attachWorkerNamespace(ns: WorkerNamespace, port: SocketPort, scheduler: Scheduler, log: FastifyBaseLogger, opts: WorkerNamespaceOptions = {}): void {
  const cap = new AddressCap(opts.maxWorkersPerAddress ?? MAX_WORKERS_PER_ADDRESS);
  const allowedOrigins = normalizeOrigins(opts.allowedOrigins ?? []);
  const limits = opts.limits ?? WORKER_EVENT_LIMITS;
  const now = opts.now ?? (() => performance.now());
  const socketOf = new Map<string, WorkerSocket>();
  scheduler.onBanned((workerId, ban) => {
    const socket = socketOf.get(workerId);
    if (!socket) return;
    log.warn({ workerId, runId: ban.runId, reason: ban.reason }, 'worker banned from its run');
    socket.emit('banned', { runId: ban.runId, reason: ban.reason });
    socket.disconnect(true);
  });

  ns.use((socket, next) => {
    const { origin, host } = socket.handshake.headers;
    const foreign = originRefusal(origin, host, allowedOrigins);
    if (foreign) {
      log.warn({ origin, host, address: socket.handshake.address }, 'worker handshake refused: foreign origin');
      return next(refuse({ code: 'origin_not_allowed', message: foreign }));
    }
    // A long-polling request carries up to MAX_MESSAGE_BYTES of messages, all decoded at once
    // before any limit could drop them; over WebSocket each message is a frame, and reading
    // pauses for a socket over its limits (read-pause.ts). Every worker speaks WebSocket.
    if (socket.conn.transport.name !== 'websocket') {
      return next(refuse({ code: 'websocket_only', message: "workers connect over WebSocket only (transports: ['websocket']); long-polling is not accepted" }));
    }
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    if (auth.protocol !== PROTOCOL_VERSION) {
      return next(
        refuse({
          code: 'protocol_mismatch',
          message: `crowdtrain protocol ${JSON.stringify(auth.protocol ?? null)} is not supported: this coordinator speaks protocol ${PROTOCOL_VERSION}. Reload the page to get the current worker.`,
        }),
      );
    }
    const hello = WorkerHelloSchema.safeParse(auth);
    if (!hello.success) return next(refuse({ code: 'bad_hello', message: `bad worker hello: ${describeIssues(hello.error)}` }));
    const ban = scheduler.banFor(hello.data);
    if (ban) {
      log.warn({ browserId: hello.data.browserId, runId: ban.runId }, 'worker handshake refused: banned from the run');
      return next(refuse({ code: 'banned', message: `this browser is banned from run ${ban.runId}: ${ban.reason}. Its coordinator can lift the ban.` }));
    }
    const address = socket.handshake.address;
    if (!cap.admit(address, socket.id)) {
      log.warn({ address, open: cap.count(address) }, 'worker handshake refused: too many sockets from one address');
      return next(
        refuse({
          code: 'too_many_sockets',
          message: `${cap.max} workers are already connected from your address (${address}), the most this coordinator accepts from one; close a tab, or ask its operator to raise the limit`,
        }),
      );
    }
    // The place is given back when the socket leaves, or when its connection closes before the
    // namespace connects it (then no disconnect event comes).
    socket.conn.once('close', () => cap.release(socket.id));
    socket.data.hello = hello.data;
    socket.data.workerId = randomUUID().slice(0, 8);
    next();
  });

  ns.on('connection', (socket) => {
    const workerId = socket.data.workerId;
    const limiter = new SocketLimiter(limits, now());
    socket.onAnyOutgoing((event, meta) => {
      if (event === 'task') limiter.taskSent(meta as TaskMeta);
    });
    /** Set when the socket is cut off for flooding: the reason its run's event log shows. */
    let cutReason: string | null = null;
    const readPause = new ReadPause(socket);
    /** Whether one more `event` may be handled; past its limit for too long, cuts the socket off. */
    const admit = (event: LimitedEvent): boolean => {
      const a = limiter.admit(event, now());
      if (a === 'ok') return true;
      // Whatever else was read with this event still arrives; nothing more until the pause ends.
      readPause.pause();
      if (a === 'first-drop') {
        log.warn({ workerId, runId: scheduler.workers.get(workerId)?.runId, event, limit: limits.events[event] }, 'worker over its message rate limit; dropping');
        scheduler.suspend(workerId, `over its ${event} rate limit`);
      }
      if (a === 'cut' && cutReason === null) {
        const { perSec, burst } = limits.events[event];
        const dropped = Object.entries(limiter.dropped).filter(([, n]) => n > 0).map(([e, n]) => `${n} ${e}`).join(', ');
        cutReason = `cut off: over the ${event} rate limit (${perSec}/s beyond its tasks, bursts of ${burst}) for ${limits.sustainMs / 1000} s; dropped ${dropped}`;
        log.warn({ workerId, runId: scheduler.workers.get(workerId)?.runId, event, dropped: { ...limiter.dropped } }, 'worker cut off for flooding');
        socket.disconnect(true);
        readPause.terminate();
      }
      return false;
    };
    port.attach(workerId, socket);
    socketOf.set(workerId, socket);
    scheduler.join(workerId, socket.data.hello);
    // A result past CHUNK_BYTES arrives in pieces first; one at a time per worker, at most the float32
    // size of the model of the run it serves (of the largest model allowed before it has a run).
    const streamLimit = (): number => {
      const w = scheduler.workers.get(workerId);
      const run = w?.runId ? scheduler.runs.get(w.runId) : undefined;
      return (run ? run.paramCount : MAX_MODEL_PARAMS) * 4 + 1024;
    };
    const chunks = new ChunkAssembler({ maxBytes: streamLimit, maxStreams: 2 });
    // Every handler validates first; a handler's own failure is logged, never thrown to the server.
    const guard = (event: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        log.error({ workerId, event, err }, 'worker message handler failed');
      }
    };
    socket.on('ready', (msg) =>
      guard('ready', () => {
        if (!admit('ready')) return;
        const r = ReadySchema.safeParse(msg);
        if (r.success) scheduler.ready(workerId, r.data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad ready message');
      }),
    );
    socket.on('status', (msg) =>
      guard('status', () => {
        if (!admit('status')) return;
        const r = WorkerStatusSchema.safeParse(msg);
        if (r.success) scheduler.status(workerId, r.data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad status message');
      }),
    );
    socket.on('result', (meta, gradient, ack) =>
      guard('result', () => {
        const reply = typeof ack === 'function' ? ack : () => {};
        if (!admit('result')) return reply({ ok: false, error: 'too many results: over the rate limit' });
        const r = TaskResultSchema.safeParse(meta);
        if (!r.success) {
          reply({ ok: false, error: `bad result: ${describeIssues(r.error)}` });
          return;
        }
        let data: unknown = gradient;
        if (r.data.chunks !== undefined) {
          try {
            data = chunks.take(r.data.chunks);
          } catch (err) {
            if (!(err instanceof ChunkError)) throw err;
            reply({ ok: false, error: `bad result: ${err.message}` });
            return;
          }
        }
        scheduler.result(workerId, r.data, data, reply);
      }),
    );
    socket.on('chunk', (meta, data) =>
      guard('chunk', () => {
        if (!admit('chunk')) return;
        const r = ChunkMetaSchema.safeParse(meta);
        if (!r.success) return log.warn({ workerId, error: describeIssues(r.error) }, 'bad chunk message');
        try {
          chunks.add(r.data, data);
        } catch (err) {
          if (!(err instanceof ChunkError)) throw err;
          log.warn({ workerId, stream: r.data.stream, error: err.message }, 'chunk refused');
        }
      }),
    );
    socket.on('relay', (meta, data) =>
      guard('relay', () => {
        if (!admit('relay')) return;
        const r = RelaySchema.safeParse(meta);
        if (r.success) scheduler.relay(workerId, r.data, data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad relay message');
      }),
    );
    socket.on('disconnect', (reason) =>
      guard('disconnect', () => {
        cap.release(socket.id);
        socketOf.delete(workerId);
        readPause.clear();
        port.detach(workerId);
        scheduler.leave(workerId, cutReason ?? reason);
      }),
    );
  });
}
