// The classroom board: its page, the contributor URL to show, and the public read-only `/board`
// namespace. Nothing here changes a run; the teacher's controls live in routes/runs.ts, and the
// parameters its "try the model" panel downloads are GET /api/runs/:id/params (routes/runs.ts).
//
//   GET /board               -> 302 to the board of the current run
//   GET /board/:runId        -> board.html (built pages) | 404 {error: 'unknown_run' | 'not_built', message}
//   GET /board/sweep/:id     -> board.html showing a sweep as a race of its trials' curves | 404 not_found | not_built
//   GET /api/join            -> {url}: the contributor page (publicUrl, CROWDTRAIN_PUBLIC_URL, or the request's own origin)
//
// Socket.IO namespace `/board` (handshake `auth: { runId }`; an unknown run is refused with a
// connect_error whose data is {code: 'unknown_run', message}). Server -> board:
//   board  BoardUpdate   at most once per second of the coordinator's clock: one message per
//                        run for all its boards, never one per worker or per round. A board's
//                        first update carries the run's metric history; later ones only the
//                        points committed since.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Namespace, Socket } from 'socket.io';
import { BOARD_NAMESPACE, BOARD_UPDATE_MS, type BoardServerEvents, type BoardUpdate, type BoardWorker } from '../../shared/board-protocol.ts';
import type { MetricPoint } from '../../shared/protocol.ts';
import type { CoordinatorContext } from '../context.ts';
import { HttpError, sendError } from '../errors.ts';
import type { Run } from '../run.ts';
import type { WorkerEntry } from '../scheduler.ts';

export interface BoardPluginOptions {
  /** The built pages (vite build output) holding board.html. */
  pagesDir?: string;
  /** The contributor URL to show; default CROWDTRAIN_PUBLIC_URL, else the origin the board was loaded from. */
  publicUrl?: string;
}

/** Seconds of rounds the grid's samples/s is averaged over (one round alone is jumpy). */
const GRID_WINDOW_MS = 5000;
/** Metric history a board gets when it connects. */
const HISTORY_POINTS = 2000;

type BoardNamespace = Namespace<Record<string, never>, BoardServerEvents>;
type BoardSocket = Socket<Record<string, never>, BoardServerEvents>;

const roomOf = (runId: string) => `board:${runId}`;

function adapterText(w: WorkerEntry): string {
  const a = w.hello.adapter;
  return [a.vendor, a.architecture, a.description].filter((s) => s && s.trim()).join(' ');
}

/** Samples/s over the rounds of the last GRID_WINDOW_MS before the newest one. */
export function gridSamplesPerSec(points: readonly MetricPoint[]): number {
  const last = points.at(-1);
  if (!last) return 0;
  let i = points.length - 1;
  while (i > 0 && last.time - points[i - 1].time <= GRID_WINDOW_MS) i--;
  const first = points[i];
  if (first === last || last.time <= first.time) return last.samplesPerSec;
  return ((last.samples - first.samples) * 1000) / (last.time - first.time);
}

/** The board's view of a run now; `points` is filled by the caller. */
export function boardUpdate(ctx: CoordinatorContext, run: Run, points: MetricPoint[]): BoardUpdate {
  const entries = ctx.scheduler.workersOf(run.id);
  // Spot checks compute some examples twice, and each worker is credited for its own: the shares
  // are of all the work done, so that they never add up past the whole.
  const whole = Math.max(run.samples, entries.reduce((a, w) => a + w.samples, 0));
  const workers = entries.map(
    (w): BoardWorker => ({
      id: w.id,
      nickname: w.hello.nickname ?? null,
      backend: w.hello.backend,
      adapter: adapterText(w),
      // The coordinator's own timing of its tasks; its self-reported figure until it has one.
      samplesPerSec: w.speed.known ? w.speed.perSec : w.samplesPerSec,
      samples: w.samples,
      share: whole > 0 ? w.samples / whole : 0,
      placement: w.placement,
    }),
  );
  const samplesPerSec = run.state === 'running' ? gridSamplesPerSec(run.metrics) : 0;
  const offered = workers.reduce((a, w) => a + w.samplesPerSec, 0);
  return {
    run: run.summary(entries.length),
    workers,
    grid: {
      samplesPerSec,
      bestWorkerSamplesPerSec: workers.reduce((m, w) => Math.max(m, w.samplesPerSec), 0),
      offeredSamplesPerSec: offered,
      efficiency: offered > 0 && samplesPerSec > 0 ? Math.min(1, samplesPerSec / offered) : null,
    },
    points,
    version: run.version,
  };
}

/** The origin a request was made to, for links back to this coordinator. */
function requestOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

/**
 * Registers the board routes and the `/board` namespace.
 * @example await boardPlugin(app, app.crowdtrain, { pagesDir: 'dist/pages' });
 */
export async function boardPlugin(app: FastifyInstance, ctx: CoordinatorContext, opts: BoardPluginOptions = {}): Promise<void> {
  const publicUrl = opts.publicUrl ?? process.env.CROWDTRAIN_PUBLIC_URL;

  app.get('/board', async (_req, reply) => {
    const run = ctx.scheduler.currentRun();
    if (!run) return sendError(reply, new HttpError('unknown_run', 'there is no run to show: create one on the admin page'));
    return reply.redirect(`/board/${encodeURIComponent(run.id)}`);
  });

  app.get<{ Params: { runId: string } }>('/board/:runId', async (req, reply) => {
    if (!ctx.scheduler.runs.has(req.params.runId)) {
      return sendError(reply, new HttpError('unknown_run', `no run with id "${req.params.runId}": open /board for the current run`));
    }
    return sendBoardPage(reply);
  });

  // The same page: it reads the sweep from the path and polls GET /api/sweeps/:id (no socket).
  app.get<{ Params: { sweepId: string } }>('/board/sweep/:sweepId', async (req, reply) => {
    if (!ctx.sweeps.get(req.params.sweepId)) {
      return sendError(reply, new HttpError('not_found', `no sweep with id "${req.params.sweepId}": GET /api/sweeps lists them`));
    }
    return sendBoardPage(reply);
  });

  function sendBoardPage(reply: FastifyReply) {
    const file = opts.pagesDir ? join(opts.pagesDir, 'board.html') : undefined;
    if (!file || !existsSync(file)) {
      return sendError(reply, new HttpError('not_built', 'the board page is not built: run `npm run build` (or start with `npm start`, which builds it)'));
    }
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(readFileSync(file));
  }

  app.get('/api/join', async (req) => ({ url: publicUrl ?? `${requestOrigin(req)}/` }));

  const feed = boardFeed(ctx, app);
  app.addHook('preClose', async () => feed.close());
}

/** The `/board` namespace: one aggregated update per run per second to all of its boards. */
function boardFeed(ctx: CoordinatorContext, app: FastifyInstance) {
  const ns = ctx.io.of(BOARD_NAMESPACE) as BoardNamespace;
  /** Boards connected since the last tick: they get the history, then join the run's room. */
  const arriving = new Set<BoardSocket>();
  /** Newest metric version sent to each run's room. */
  const sentVersion = new Map<string, number>();
  /** Newest evaluated version sent to each run's room (its numbers may arrive after its point). */
  const sentEvaluation = new Map<string, number>();

  ns.use((socket, next) => {
    const runId = (socket.handshake.auth as Record<string, unknown> | undefined)?.runId;
    if (typeof runId !== 'string' || !ctx.scheduler.runs.has(runId)) {
      const message = typeof runId === 'string' ? `no run with id "${runId}"` : 'connect with auth: { runId }';
      return next(Object.assign(new Error(message), { data: { code: 'unknown_run', message } }));
    }
    socket.data = { runId };
    next();
  });
  ns.on('connection', (socket: BoardSocket) => {
    arriving.add(socket);
    socket.on('disconnect', () => arriving.delete(socket));
  });

  const tick = () => {
    for (const run of ctx.scheduler.runs.values()) {
      const room = ns.adapter.rooms.get(roomOf(run.id));
      const points = run.metrics;
      const last = points.at(-1)?.version ?? 0;
      const sent = sentVersion.get(run.id);
      sentVersion.set(run.id, last);
      const evaluated = run.evaluatedVersion;
      const late = sent !== undefined && evaluated > (sentEvaluation.get(run.id) ?? 0) && evaluated <= sent ? points.findLast((p) => p.version === evaluated) : undefined;
      sentEvaluation.set(run.id, evaluated);
      if (!room || room.size === 0) continue;
      // Points are trimmed at the front, so find the new ones by version, not by count.
      let i = points.length;
      if (sent !== undefined && last >= sent) while (i > 0 && points[i - 1].version > sent) i--;
      const update = boardUpdate(ctx, run, points.slice(i));
      if (late) update.evaluated = [late];
      ns.to(roomOf(run.id)).emit('board', update);
    }
    for (const socket of arriving) {
      const runId = (socket.data as { runId: string }).runId;
      const run = ctx.scheduler.runs.get(runId);
      if (!run) {
        socket.disconnect(true);
        continue;
      }
      socket.emit('board', boardUpdate(ctx, run, run.metrics.slice(-HISTORY_POINTS)));
      void socket.join(roomOf(runId));
      sentVersion.set(runId, run.metrics.at(-1)?.version ?? 0);
    }
    arriving.clear();
    for (const id of sentVersion.keys()) if (!ctx.scheduler.runs.has(id)) sentVersion.delete(id);
    for (const id of sentEvaluation.keys()) if (!ctx.scheduler.runs.has(id)) sentEvaluation.delete(id);
  };
  const guarded = () => {
    try {
      tick();
    } catch (err) {
      app.log.error({ err }, 'board feed failed');
    }
  };
  // The coordinator's clock paces the feed, so a test advances it instead of sleeping.
  const clock = ctx.scheduler.clock;
  const timer = clock.setInterval(guarded, BOARD_UPDATE_MS);
  (timer as { unref?: () => void }).unref?.(); // a system timer must not keep the process alive

  return {
    close() {
      clock.clearTimeout(timer);
    },
  };
}
