// The admin credential's routes and the admin Socket.IO namespace: login, logout and the session
// probe, and the live feed the admin page draws (runs, metric points, worker tables, events). The
// admin's run routes (create, steer, inspect) live with the public ones in routes/runs.ts; the
// credential itself in server/auth.ts.
//
// REST (JSON; errors are `{ error: code, message }`, see server/errors.ts):
//   POST   /api/admin/login          {token}  -> 200 {ok:true} + signed session cookie | 401 bad_token
//                                     | 429 too_many_attempts (the 11th attempt in a minute from one address)
//   POST   /api/admin/logout                  -> 200 {ok:true}, cookie cleared
//   GET    /api/admin/session                 -> {admin: boolean}   (public; cookie only)
//
// Socket.IO namespace `/admin` (handshake: the session cookie, or `auth: { token }`; refused with a
// connect_error whose `data` is {code: 'unauthorized' | 'too_many_attempts', message}). Server -> admin:
//   runs    RunSummary[]                          on connect, then whenever a run is created, deleted or changes state
//   metric  {runId, point: MetricPoint}           each committed round's metric point (polled every 500 ms)
//   evaluation {runId, point: MetricPoint}        a point again, with its evaluation's numbers, when they
//                                                 arrived after the point was sent (evaluation runs off the loop)
//   workers {runId, workers: AdminWorker[]}       every second for each run with connected workers
//                                                 (one last empty list when its last worker leaves)
//   event   RunEvent                              every event-log entry (joins, leaves, late rounds, ...)
// Nothing is sent to the workers' namespace: a contributor's socket never receives these.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Namespace } from 'socket.io';
import type { RunSummary } from '../../shared/protocol.ts';
import type { AdminServerEvents, AdminWorker } from '../../shared/rest-types.ts';
import { AdminAuth, ADMIN_LOGIN_REQUIRED, tooManyWrongTokens } from '../auth.ts';
import type { CoordinatorContext } from '../context.ts';
import { defaultErrorHandler, HttpError, sendError } from '../errors.ts';
import type { WorkerEntry } from '../scheduler.ts';
import { loginRateLimit } from '../web-security.ts';

/** Socket.IO namespace of the admin page. */
export const ADMIN_NAMESPACE = '/admin';

// Declared in shared/rest-types.ts, where the pages import them from.
export type { AdminServerEvents, AdminWorker, SpecPreview } from '../../shared/rest-types.ts';
export type { RunSummary };

export interface AdminPluginOptions {
  /** CROWDTRAIN_ADMIN_TOKEN; when missing, a token is generated at first start. */
  adminToken?: string;
  /** Told a generated token once, at the start that created it. */
  onTokenCreated?: (token: string) => void;
}

const FEED_MS = 1000;
const METRIC_POLL_MS = 500;

function adapterString(w: WorkerEntry): string {
  const a = w.hello.adapter;
  return [a.vendor, a.architecture, a.description].filter((s) => s && s.trim()).join(' ');
}

function connectedWorker(w: WorkerEntry, runId: string): AdminWorker {
  return {
    id: w.id,
    runId,
    nickname: w.hello.nickname ?? null,
    adapter: adapterString(w),
    backend: w.hello.backend,
    // The coordinator's own timing of its tasks; its self-reported figure until it has one.
    samplesPerSec: w.speed.known ? w.speed.perSec : w.samplesPerSec,
    tasksDone: w.tasksDone,
    samples: w.samples,
    rejected: w.rejected,
    lastSeen: new Date(w.lastSeen).toISOString(),
    connected: true,
    placement: w.placement,
    allocatedBytes: w.allocatedBytes ?? null,
  };
}

/** Connected workers of a run, then those the store saw earlier (most recent first). */
export function runWorkers(ctx: CoordinatorContext, runId: string): AdminWorker[] {
  const live = ctx.scheduler.workersOf(runId).map((w) => connectedWorker(w, runId));
  const liveIds = new Set(live.map((w) => w.id));
  const seen = ctx.store
    .workers(runId)
    .filter((r) => !liveIds.has(r.workerId))
    .sort((a, b) => b.lastSeen - a.lastSeen)
    .map(
      (r): AdminWorker => ({
        id: r.workerId,
        runId,
        nickname: r.nickname,
        adapter: r.adapter,
        backend: r.backend,
        samplesPerSec: 0,
        tasksDone: r.tasksDone,
        samples: r.samples,
        rejected: r.rejected,
        lastSeen: new Date(r.lastSeen).toISOString(),
        connected: false,
        placement: null,
        allocatedBytes: null,
      }),
    );
  return [...live, ...seen];
}

const summaries = (ctx: CoordinatorContext): RunSummary[] => [...ctx.scheduler.runs.values()].map((r) => r.summary(ctx.scheduler.workersOf(r.id).length));

/**
 * Sets up admin authentication, login and logout, and the `/admin` namespace; the feed it returns
 * is told when a run route changed the list of runs.
 * @example const feed = await adminPlugin(app, app.crowdtrain, { adminToken: process.env.CROWDTRAIN_ADMIN_TOKEN, onTokenCreated: print });
 *          await runsPlugin(app, app.crowdtrain, { onRunsChanged: feed.pushRuns });
 */
export async function adminPlugin(app: FastifyInstance, ctx: CoordinatorContext, opts: AdminPluginOptions = {}): Promise<{ pushRuns: () => void }> {
  const clock = ctx.scheduler.clock;
  const auth = await AdminAuth.create({ store: ctx.store, adminToken: opts.adminToken, onTokenCreated: opts.onTokenCreated, now: () => clock.now() });
  app.decorate('adminAuth', auth);
  const feed = adminFeed(ctx, auth, app.log);
  app.addHook('preClose', async () => feed.close());


  // Public: login, logout, session probe.
  await app.register(async (pub) => {
    pub.setErrorHandler(defaultErrorHandler);

    // At most RATE_LIMITS.login attempts a minute per address (@fastify/rate-limit), and wrong
    // tokens counted with wrong Bearer tokens (auth.failures), whichever stops the guesser first.
    pub.post<{ Body: { token?: unknown } | undefined }>('/api/admin/login', { config: { rateLimit: loginRateLimit } }, async (req, reply) => {
      const wait = auth.failures.retryAfterMs(req.ip);
      if (wait > 0) {
        return sendError(reply.header('retry-after', Math.ceil(wait / 1000)), tooManyWrongTokens(wait));
      }
      const token = req.body && typeof req.body === 'object' ? req.body.token : undefined;
      if (!(await auth.checkToken(token))) {
        auth.failures.fail(req.ip);
        req.log.warn({ ip: req.ip }, 'admin login refused');
        return sendError(reply, new HttpError('bad_token', 'that is not the admin token (CROWDTRAIN_ADMIN_TOKEN, or the one printed at first start)'));
      }
      auth.setSessionCookie(req, reply, auth.createSession());
      req.log.info({ ip: req.ip }, 'admin logged in');
      return { ok: true };
    });

    pub.post('/api/admin/logout', async (req, reply) => {
      auth.endSession(auth.sessionFromCookieHeader(req.headers.cookie));
      auth.clearSessionCookie(req, reply);
      return { ok: true };
    });

    pub.get('/api/admin/session', async (req) => ({ admin: auth.hasSessionCookie(req) }));
  });

  return { pushRuns: feed.pushRuns };
}

/**
 * The `/admin` namespace: refuses handshakes without the credential and pushes runs, metric
 * points, worker tables and events to logged-in admin pages.
 */
function adminFeed(ctx: CoordinatorContext, auth: AdminAuth, log: FastifyBaseLogger) {
  const ns = ctx.io.of(ADMIN_NAMESPACE) as Namespace<Record<string, never>, AdminServerEvents>;
  ns.use((socket, next) => {
    const refuse = (code: string, message: string) => next(Object.assign(new Error(message), { data: { code, message } }));
    const h = socket.handshake;
    const address = h.address;
    const offersToken = typeof (h.auth as Record<string, unknown> | undefined)?.token === 'string';
    const wait = offersToken ? auth.failures.retryAfterMs(address) : 0;
    if (wait > 0 && !auth.hasSession(auth.sessionFromCookieHeader(h.headers.cookie))) {
      return refuse('too_many_attempts', `too many wrong admin tokens from this address; try again in ${Math.ceil(wait / 1000)} s`);
    }
    auth.checkHandshake({ headers: h.headers, auth: h.auth as Record<string, unknown> }).then(
      (ok) => {
        if (ok) return next();
        if (offersToken) auth.failures.fail(address);
        refuse('unauthorized', ADMIN_LOGIN_REQUIRED);
      },
      (err: unknown) => refuse('unauthorized', `admin check failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  });
  ns.on('connection', (socket) => {
    socket.emit('runs', summaries(ctx));
  });

  let runsKey = '';
  const key = () => [...ctx.scheduler.runs.values()].map((r) => `${r.id}:${r.state}:${r.stopReason ?? ''}`).join('|');
  const pushRuns = () => {
    runsKey = key();
    if (ns.sockets.size > 0) ns.emit('runs', summaries(ctx));
  };
  const checkRuns = () => {
    if (key() !== runsKey) pushRuns();
  };

  // Newest metric version sent per run: run.metrics is trimmed at its front, so lengths lie.
  const sentVersion = new Map<string, number>();
  // Newest evaluated version sent per run: an evaluation that lands after its round's point was
  // sent goes out as an 'evaluation' with that point and its numbers.
  const sentEvaluation = new Map<string, number>();
  const pushMetrics = () => {
    const listening = ns.sockets.size > 0;
    for (const run of ctx.scheduler.runs.values()) {
      const points = run.metrics;
      const last = points.at(-1);
      const sent = sentVersion.get(run.id);
      if (!last) continue;
      sentVersion.set(run.id, last.version);
      // A run seen for the first time, or restored to an older version, starts from its newest point.
      if (sent === undefined || last.version < sent) continue;
      if (!listening) continue;
      const evaluated = run.evaluatedVersion;
      if (evaluated > (sentEvaluation.get(run.id) ?? 0) && evaluated <= sent) {
        const point = points.findLast((p) => p.version === evaluated);
        if (point) ns.emit('evaluation', { runId: run.id, point });
      }
      sentEvaluation.set(run.id, evaluated);
      let i = points.length;
      while (i > 0 && points[i - 1].version > sent) i--;
      for (; i < points.length; i++) ns.emit('metric', { runId: run.id, point: points[i] });
    }
    for (const id of sentVersion.keys()) if (!ctx.scheduler.runs.has(id)) sentVersion.delete(id);
    for (const id of sentEvaluation.keys()) if (!ctx.scheduler.runs.has(id)) sentEvaluation.delete(id);
  };

  let withWorkers = new Set<string>();
  const pushWorkers = () => {
    const now = new Set<string>();
    for (const w of ctx.scheduler.workers.values()) if (w.runId && ctx.scheduler.runs.has(w.runId)) now.add(w.runId);
    if (ns.sockets.size > 0) {
      for (const runId of now) ns.emit('workers', { runId, workers: runWorkers(ctx, runId) });
      // One last table for a run whose last worker left, so the page does not show it stale.
      for (const runId of withWorkers) if (!now.has(runId) && ctx.scheduler.runs.has(runId)) ns.emit('workers', { runId, workers: runWorkers(ctx, runId) });
    }
    withWorkers = now;
  };

  const guard = (what: string, fn: () => void) => () => {
    try {
      fn();
    } catch (err) {
      log.error({ err, what }, 'admin feed failed');
    }
  };
  pushMetrics();
  runsKey = key();
  const timers = [
    setInterval(guard('runs+workers', () => (checkRuns(), pushWorkers())), FEED_MS),
    setInterval(guard('metrics', pushMetrics), METRIC_POLL_MS),
  ];
  for (const t of timers) t.unref();
  const unsubscribe = ctx.events.subscribe((e) => {
    if (ns.sockets.size > 0) ns.emit('event', e);
    if (e.kind === 'state' || e.kind === 'created' || e.kind === 'completed' || e.kind === 'resumed') queueMicrotask(guard('runs', checkRuns));
  });

  return {
    pushRuns,
    close() {
      for (const t of timers) clearInterval(t);
      unsubscribe();
    },
  };
}
