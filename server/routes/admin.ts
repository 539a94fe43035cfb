// Admin REST and the admin Socket.IO namespace: login and sessions, creating and steering runs,
// their workers, events and checkpoints, and the live feed the admin page draws. Everything here
// needs the admin credential (server/auth.ts) except login, logout and the session probe; a POST or
// DELETE authenticated by the session cookie must come from this coordinator's own origin (403
// cross_origin otherwise). Bodies: 64 KiB, run specs 1 MiB (413 body_too_large beyond).
// The public read-only run routes live in routes/runs.ts.
//
// REST (JSON unless said otherwise; errors are `{ error: code, message }`):
//   POST   /api/admin/login          {token}  -> 200 {ok:true} + signed session cookie | 401 bad_token
//                                     | 429 too_many_attempts (the 11th attempt in a minute from one address)
//   POST   /api/admin/logout                  -> 200 {ok:true}, cookie cleared
//   GET    /api/admin/session                 -> {admin: boolean}   (public; cookie only)
//   POST   /api/runs                 spec as JSON, or YAML/JSON text (application/yaml, text/yaml,
//                                     application/x-yaml, text/plain) -> 201 {run, url} | 400 invalid_spec {issues}
//   POST   /api/specs/preview        the same body; nothing is created -> 200 SpecPreview (each layer's
//                                     output shape and parameters) | 400 invalid_spec {issues}
//   POST   /api/runs/:id/pause|resume|start|stop -> {run} | 404 unknown_run | 409 bad_transition
//   DELETE /api/runs/:id                      -> 204 | 404 unknown_run
//   GET    /api/runs/:id/workers              -> {workers: AdminWorker[]} (connected first, then seen earlier)
//   GET    /api/runs/:id/events?limit=N       -> {events: RunEvent[]}
//   GET    /api/runs/:id/checkpoint           -> the latest safetensors file (attachment) | 404 no_checkpoint
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
import { createReadStream, statSync } from 'node:fs';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { Namespace } from 'socket.io';
import { describeRunModel, modelLine } from '../../shared/run-model.ts';
import { checkSpecAgainstDataset, parseRunSpec, RunSpecError } from '../../shared/run-spec.ts';
import { parseRunSpecText } from '../../shared/run-spec-text.ts';
import type { Placement, RunState } from '../../shared/protocol.ts';
import { AdminAuth, ADMIN_LOGIN_REQUIRED, requireAdmin } from '../auth.ts';
import type { CoordinatorContext } from '../context.ts';
import { fastifyClientError, HttpError, sendError } from '../errors.ts';
import { BODY_LIMITS, loginRateLimit } from '../web-security.ts';
import type { RunEvent } from '../event-log.ts';
import type { MetricPoint, Run } from '../run.ts';
import type { WorkerEntry } from '../scheduler.ts';

/** Socket.IO namespace of the admin page. */
export const ADMIN_NAMESPACE = '/admin';

export type RunSummary = ReturnType<Run['summary']>;

/** One row of the admin page's worker table. */
export interface AdminWorker {
  id: string;
  runId: string;
  nickname: string | null;
  /** GPU adapter as the worker reported it ("vendor architecture description"), '' when unknown. */
  adapter: string;
  backend: string;
  samplesPerSec: number;
  tasksDone: number;
  samples: number;
  rejected: number;
  /** ISO time. */
  lastSeen: string;
  connected: boolean;
  /** Pipeline runs: which layers of which replica it holds (null: standby, or not a pipeline run). */
  placement: Placement | null;
  /** Bytes it reported allocating for its model or stage. */
  allocatedBytes: number | null;
}

/** What POST /api/specs/preview answers: the model a spec would train, before any run exists. */
export interface SpecPreview {
  /** Shape of one example as the first layer sees it ([1, 28, 28] for mnist's images). */
  inputShape: number[];
  /** Shorthands expanded (a transformer-block is two residual layers; the mlp form dense layers). */
  layers: { index: number; kind: string; outShape: number[]; params: number }[];
  paramCount: number;
  /** The model in one line, as the board shows it. */
  line: string;
}

/** The admin namespace's events, server to admin page. */
export interface AdminServerEvents {
  runs: (runs: RunSummary[]) => void;
  metric: (m: { runId: string; point: MetricPoint }) => void;
  evaluation: (m: { runId: string; point: MetricPoint }) => void;
  workers: (w: { runId: string; workers: AdminWorker[] }) => void;
  event: (e: RunEvent) => void;
}

export interface AdminPluginOptions {
  /** CROWDTRAIN_ADMIN_TOKEN; when missing, a token is generated at first start. */
  adminToken?: string;
  /** Told a generated token once, at the start that created it. */
  onTokenCreated?: (token: string) => void;
}

const SPEC_CONTENT_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml'];
const FEED_MS = 1000;
const METRIC_POLL_MS = 500;

type Verb = 'pause' | 'resume' | 'start' | 'stop';
const VERBS: Record<Verb, { to: 'running' | 'paused' | 'stopped'; from: RunState[]; done: string }> = {
  pause: { to: 'paused', from: ['running', 'waiting'], done: 'paused' },
  resume: { to: 'running', from: ['paused', 'stopped', 'completed', 'waiting'], done: 'resumed' },
  start: { to: 'running', from: ['paused', 'stopped', 'completed', 'waiting'], done: 'started' },
  stop: { to: 'stopped', from: ['running', 'paused', 'waiting'], done: 'stopped' },
};

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

/** Maps anything createRun or a verb throws to a status and a message the caller can act on. */
function describeError(err: unknown, req?: FastifyRequest): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof RunSpecError || (err instanceof Error && err.name === 'RunSpecError' && Array.isArray((err as RunSpecError).issues))) {
    const e = err as RunSpecError;
    return new HttpError('invalid_spec', `invalid run spec: ${e.message}`, { issues: e.issues });
  }
  if (err instanceof Error && /^YAML/.test(err.name)) return new HttpError('invalid_spec', `the run spec is not valid YAML: ${err.message}`, { issues: [] });
  if (err instanceof SyntaxError) return new HttpError('invalid_spec', `the run spec is not valid JSON: ${err.message}`, { issues: [] });
  const client = fastifyClientError(err, req, `the run spec as JSON (application/json) or as YAML text (${[...SPEC_CONTENT_TYPES, 'text/plain'].join(', ')})`);
  if (client) return client;
  return new HttpError('internal', `the coordinator failed: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * Sets up admin authentication, the admin REST routes and the `/admin` namespace.
 * @example await adminPlugin(app, app.crowdtrain, { adminToken: process.env.CROWDTRAIN_ADMIN_TOKEN, onTokenCreated: print });
 */
export async function adminPlugin(app: FastifyInstance, ctx: CoordinatorContext, opts: AdminPluginOptions = {}): Promise<void> {
  const clock = ctx.scheduler.clock;
  const auth = await AdminAuth.create({ store: ctx.store, adminToken: opts.adminToken, onTokenCreated: opts.onTokenCreated, now: () => clock.now() });
  app.decorate('adminAuth', auth);
  const feed = adminFeed(ctx, auth, app.log);
  app.addHook('preClose', async () => feed.close());

  const fail = sendError;

  const findRun = (id: string): Run => {
    const run = ctx.scheduler.runs.get(id);
    if (!run) throw new HttpError('unknown_run', `no run with id "${id}"`);
    return run;
  };
  /** A run still in the scheduler, or one the store remembers (its history is still readable). */
  const knownRun = (id: string): { name: string; version: number } => {
    const run = ctx.scheduler.runs.get(id) ?? ctx.store.getRun(id);
    if (!run) throw new HttpError('unknown_run', `no run with id "${id}"`);
    return run;
  };

  // Public: login, logout, session probe.
  await app.register(async (pub) => {
    pub.setErrorHandler((err, req, reply) => fail(reply, describeError(err, req)));

    // At most RATE_LIMITS.login attempts a minute per address (@fastify/rate-limit), and wrong
    // tokens counted with wrong Bearer tokens (auth.failures), whichever stops the guesser first.
    pub.post<{ Body: { token?: unknown } | undefined }>('/api/admin/login', { config: { rateLimit: loginRateLimit } }, async (req, reply) => {
      const wait = auth.failures.retryAfterMs(req.ip);
      if (wait > 0) {
        return reply
          .code(429)
          .header('retry-after', Math.ceil(wait / 1000))
          .send({ error: 'too_many_attempts', message: `too many wrong admin tokens from this address; try again in ${Math.ceil(wait / 1000)} s` });
      }
      const token = req.body && typeof req.body === 'object' ? req.body.token : undefined;
      if (!(await auth.checkToken(token))) {
        auth.failures.fail(req.ip);
        req.log.warn({ ip: req.ip }, 'admin login refused');
        return reply.code(401).send({ error: 'bad_token', message: 'that is not the admin token (CROWDTRAIN_ADMIN_TOKEN, or the one printed at first start)' });
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

  // Admin only: every route in this scope is refused before its body is even read.
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireAdmin);
    admin.setErrorHandler((err, req, reply) => {
      const e = describeError(err, req);
      if (e.statusCode >= 500) req.log.error({ err }, 'admin route failed');
      return fail(reply, e);
    });
    // YAML arrives as text; createRun parses it (text/plain already yields a string in Fastify).
    admin.addContentTypeParser(SPEC_CONTENT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

    admin.post('/api/runs', { bodyLimit: BODY_LIMITS.spec }, async (req: FastifyRequest, reply) => {
      const body = req.body;
      if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) {
        throw new HttpError('invalid_spec', 'send a run spec: a JSON object, or YAML text with content-type application/yaml', { issues: [] });
      }
      let run: Run;
      try {
        run = ctx.createRun(body);
      } catch (err) {
        const e = describeError(err, req);
        if (e.statusCode >= 500) req.log.error({ err }, 'run creation failed');
        return fail(reply, e);
      }
      feed.pushRuns();
      req.log.info({ runId: run.id, name: run.name }, 'run created by admin');
      return reply.code(201).send({ run: run.summary(ctx.scheduler.workersOf(run.id).length), url: `${req.protocol}://${req.host}/admin#run=${run.id}` });
    });

    // The admin page calls this as a spec is typed, so a wrong layer list is seen before creating.
    admin.post('/api/specs/preview', { bodyLimit: BODY_LIMITS.spec }, async (req: FastifyRequest): Promise<SpecPreview> => {
      const body = req.body;
      if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) {
        throw new HttpError('invalid_spec', 'send a run spec: a JSON object, or YAML text with content-type application/yaml', { issues: [] });
      }
      const spec = typeof body === 'string' ? parseRunSpecText(body) : parseRunSpec(body);
      const ds = ctx.datasets.forSpec(spec);
      if (!ds) throw new RunSpecError([{ path: 'dataset', message: `no dataset named "${spec.dataset}"; available: ${ctx.datasets.list().map((d) => d.name).join(', ')}` }]);
      checkSpecAgainstDataset(spec, ds.info);
      const model = describeRunModel(spec, ds.info);
      return {
        inputShape: model.inputShape,
        layers: model.description.layers.map((l) => ({ index: l.index, kind: l.config.kind, outShape: l.outShape, params: l.paramCount })),
        paramCount: model.description.paramCount,
        line: modelLine(model),
      };
    });

    for (const verb of Object.keys(VERBS) as Verb[]) {
      admin.post<{ Params: { id: string } }>(`/api/runs/:id/${verb}`, async (req, reply) => {
        const run = findRun(req.params.id);
        const rule = VERBS[verb];
        if (!rule.from.includes(run.state)) {
          return reply.code(409).send({ error: 'bad_transition', message: `run ${run.id} is ${run.state}; it cannot be ${rule.done}` });
        }
        ctx.setRunState(run, rule.to);
        feed.pushRuns();
        req.log.info({ runId: run.id, verb, state: run.state }, 'run state set by admin');
        return { run: run.summary(ctx.scheduler.workersOf(run.id).length) };
      });
    }

    admin.delete<{ Params: { id: string } }>('/api/runs/:id', async (req, reply) => {
      findRun(req.params.id);
      if (!ctx.deleteRun(req.params.id)) throw new HttpError('unknown_run', `no run with id "${req.params.id}"`);
      feed.pushRuns();
      req.log.info({ runId: req.params.id }, 'run deleted by admin');
      return reply.code(204).send();
    });

    admin.get<{ Params: { id: string } }>('/api/runs/:id/workers', async (req) => {
      knownRun(req.params.id);
      return { workers: runWorkers(ctx, req.params.id) };
    });

    admin.get<{ Params: { id: string }; Querystring: { limit?: string } }>('/api/runs/:id/events', async (req) => {
      knownRun(req.params.id);
      const raw = req.query.limit;
      const limit = raw === undefined ? 200 : Number(raw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError('bad_request', `limit must be an integer from 1 to 10000 (got ${JSON.stringify(raw)})`);
      return { events: ctx.store.events(req.params.id, limit) };
    });

    admin.get<{ Params: { id: string } }>('/api/runs/:id/checkpoint', async (req, reply) => {
      const run = knownRun(req.params.id);
      const file = ctx.latestCheckpointFile(req.params.id);
      let bytes: number | undefined;
      try {
        bytes = file ? statSync(file).size : undefined;
      } catch {
        bytes = undefined;
      }
      if (!file || bytes === undefined) {
        throw new HttpError('no_checkpoint', `run ${req.params.id} has no checkpoint yet: one is written every checkpointEvery rounds and when the run is paused or stopped`);
      }
      const version = ctx.store.latestCheckpoint(req.params.id)?.version ?? run.version;
      const name = run.name.replace(/[^A-Za-z0-9._-]+/g, '-') || 'run';
      return reply
        .type('application/octet-stream')
        .header('content-length', bytes)
        .header('content-disposition', `attachment; filename="${name}-v${version}.safetensors"`)
        .send(createReadStream(file));
    });
  });
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
