// The workers' Socket.IO namespace: refuses a handshake of another protocol version or a
// malformed hello, validates every message against shared/protocol.ts, and hands it to the
// scheduler. A bad message gets an error back; it never throws into the coordinator.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { ChunkAssembler, ChunkError } from '../../shared/chunks.ts';
import { ChunkMetaSchema, describeIssues, PROTOCOL_VERSION, ReadySchema, RelaySchema, TaskResultSchema, WorkerHelloSchema, WorkerStatusSchema, type RefusalData } from '../../shared/protocol.ts';
import { MAX_MODEL_PARAMS } from '../../shared/run-spec.ts';
import type { Scheduler, WorkerNamespace } from '../scheduler.ts';
import type { SocketPort } from './socket-port.ts';

function refuse(data: RefusalData): Error & { data: RefusalData } {
  return Object.assign(new Error(data.message), { data });
}

export function attachWorkerNamespace(ns: WorkerNamespace, port: SocketPort, scheduler: Scheduler, log: FastifyBaseLogger): void {
  ns.use((socket, next) => {
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
    socket.data.hello = hello.data;
    socket.data.workerId = randomUUID().slice(0, 8);
    next();
  });

  ns.on('connection', (socket) => {
    const workerId = socket.data.workerId;
    port.attach(workerId, socket);
    scheduler.join(workerId, socket.data.hello);
    // A result past CHUNK_BYTES arrives in pieces first; one at a time per worker, at most a model's size.
    const chunks = new ChunkAssembler({ maxBytes: MAX_MODEL_PARAMS * 4 + 1024, maxStreams: 2 });
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
        const r = ReadySchema.safeParse(msg);
        if (r.success) scheduler.ready(workerId, r.data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad ready message');
      }),
    );
    socket.on('status', (msg) =>
      guard('status', () => {
        const r = WorkerStatusSchema.safeParse(msg);
        if (r.success) scheduler.status(workerId, r.data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad status message');
      }),
    );
    socket.on('result', (meta, gradient, ack) =>
      guard('result', () => {
        const reply = typeof ack === 'function' ? ack : () => {};
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
        const r = RelaySchema.safeParse(meta);
        if (r.success) scheduler.relay(workerId, r.data, data);
        else log.warn({ workerId, error: describeIssues(r.error) }, 'bad relay message');
      }),
    );
    socket.on('disconnect', (reason) =>
      guard('disconnect', () => {
        port.detach(workerId);
        scheduler.leave(workerId, reason);
      }),
    );
  });
}
