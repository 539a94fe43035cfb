// Every /api/runs route in one place: reading runs for anyone, creating, steering and inspecting
// them for the admin (a child scope behind requireAdmin, refused before its body is read), and the
// spec preview the admin page calls as a spec is typed. The admin credential, login and the live
// admin feed live in routes/admin.ts; errors are `{ error: code, message }` (server/errors.ts).
//
// Public:
//   GET    /api/runs                          -> {runs: RunSummary[]}
//   GET    /api/runs/:id                      -> RunSummary & {metrics: MetricPoint[] (the last 2000)} | 404 unknown_run
//   GET    /api/runs/:id/leaderboard          -> {leaderboard: LeaderboardEntry[]} (from the store: tabs long closed count)
//   GET    /api/runs/:id/params               -> the run's parameters, float32 little-endian in dense order,
//                                                header x-crowdtrain-version: the round they are from | 404 unknown_run
// Admin (session cookie from the coordinator's own origin, or Authorization: Bearer <token>):
//   POST   /api/runs                 spec as JSON, or YAML/JSON text (application/yaml, text/yaml,
//                                     application/x-yaml, text/plain; at most 1 MiB) -> 201 {run, url} | 400 invalid_spec {issues}
//   POST   /api/specs/preview        the same body; nothing is created -> 200 SpecPreview (each layer's
//                                     output shape and parameters) | 400 invalid_spec {issues}
//   POST   /api/runs/:id/pause|resume|start|stop -> {run} | 404 unknown_run | 409 bad_transition
//   PATCH  /api/runs/:id             {share: number > 0}: the run's weight among running runs (its
//                                     workers follow at their next round boundaries) -> {run} | 400 bad_request | 404 unknown_run
//   DELETE /api/runs/:id                      -> 204 | 404 unknown_run
//   GET    /api/runs/:id/workers              -> {workers: AdminWorker[]} (connected first, then seen earlier)
//   GET    /api/runs/:id/events?limit=N       -> {events: RunEvent[]}
//   GET    /api/runs/:id/checkpoint           -> the latest safetensors file (attachment) | 404 no_checkpoint
import { createReadStream, statSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PARAMS_VERSION_HEADER } from '../../shared/board-protocol.ts';
import type { RunState } from '../../shared/protocol.ts';
import type { SpecPreview } from '../../shared/rest-types.ts';
import { describeRunModel, modelLine } from '../../shared/run-model.ts';
import { checkSpecAgainstDataset, parseRunSpec, RunSpecError } from '../../shared/run-spec.ts';
import { parseRunSpecText } from '../../shared/run-spec-text.ts';
import { requireAdmin } from '../auth.ts';
import { shareError } from '../grid-shares.ts';
import type { CoordinatorContext } from '../context.ts';
import { fastifyClientError, HttpError, sendError } from '../errors.ts';
import type { Run } from '../run.ts';
import { BODY_LIMITS } from '../web-security.ts';
import { runWorkers } from './admin.ts';

/** Content types a run spec may arrive as text in (besides JSON and text/plain). */
export const SPEC_CONTENT_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml'];

type Verb = 'pause' | 'resume' | 'start' | 'stop';
const VERBS: Record<Verb, { to: 'running' | 'paused' | 'stopped'; from: RunState[]; done: string }> = {
  pause: { to: 'paused', from: ['running', 'waiting'], done: 'paused' },
  resume: { to: 'running', from: ['paused', 'stopped', 'completed', 'waiting'], done: 'resumed' },
  start: { to: 'running', from: ['paused', 'stopped', 'completed', 'waiting'], done: 'started' },
  stop: { to: 'stopped', from: ['running', 'paused', 'waiting'], done: 'stopped' },
};

/** Maps anything a spec parse, createRun or a verb throws to a status and a message the caller can act on. */
export function describeRunError(err: unknown, req?: FastifyRequest): HttpError {
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

export interface RunsPluginOptions {
  /** Told when a run was created, deleted or changed state here (the admin feed pushes its list). */
  onRunsChanged?: () => void;
}

const specBody = (body: unknown): unknown => {
  if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) {
    throw new HttpError('invalid_spec', 'send a run spec: a JSON object, or YAML text with content-type application/yaml', { issues: [] });
  }
  return body;
};

/**
 * Registers every /api/runs route (and the spec preview).
 * @example await runsPlugin(app, app.crowdtrain, { onRunsChanged: adminFeed.pushRuns });
 */
export async function runsPlugin(app: FastifyInstance, ctx: CoordinatorContext, opts: RunsPluginOptions = {}): Promise<void> {
  const { scheduler, store } = ctx;
  const changed = () => opts.onRunsChanged?.();
  const summary = (run: Run) => run.summary(scheduler.workersOf(run.id).length);
  const findRun = (id: string): Run => {
    const run = scheduler.runs.get(id);
    if (!run) throw new HttpError('unknown_run', `no run with id "${id}"`);
    return run;
  };
  /** A run still in the scheduler, or one the store remembers (its history is still readable). */
  const knownRun = (id: string): { name: string; version: number } => {
    const run = scheduler.runs.get(id) ?? store.getRun(id);
    if (!run) throw new HttpError('unknown_run', `no run with id "${id}"`);
    return run;
  };

  await app.register(async (runs) => {
    runs.setErrorHandler((err, req, reply) => {
      const e = describeRunError(err, req);
      if (e.statusCode >= 500) req.log.error({ err }, 'run route failed');
      return sendError(reply, e);
    });

    runs.get('/api/runs', async () => ({ runs: [...scheduler.runs.values()].map(summary) }));

    runs.get<{ Params: { id: string } }>('/api/runs/:id', async (req) => {
      const run = findRun(req.params.id);
      return { ...summary(run), metrics: run.metrics.slice(-2000) };
    });

    // From the store, so that contributions of tabs long closed (and of earlier coordinator
    // processes) still count.
    runs.get<{ Params: { id: string } }>('/api/runs/:id/leaderboard', async (req) => {
      knownRun(req.params.id);
      return { leaderboard: store.leaderboard(req.params.id) };
    });

    // The board's and the contributor page's "try the model" panel.
    runs.get<{ Params: { id: string } }>('/api/runs/:id/params', async (req, reply) => {
      const run = findRun(req.params.id);
      // A copy: the optimizer steps the parameters in place while the reply is still being written.
      const bytes = Buffer.from(new Uint8Array(run.params.buffer, run.params.byteOffset, run.params.byteLength));
      return reply.type('application/octet-stream').header(PARAMS_VERSION_HEADER, String(run.version)).header('cache-control', 'no-store').send(bytes);
    });

    // Admin only: every route in this scope is refused before its body is even read.
    await runs.register(async (admin) => {
      admin.addHook('onRequest', requireAdmin);
      // YAML arrives as text; createRun parses it (text/plain already yields a string in Fastify).
      admin.addContentTypeParser(SPEC_CONTENT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

      admin.post('/api/runs', { bodyLimit: BODY_LIMITS.spec }, async (req, reply) => {
        const run = ctx.createRun(specBody(req.body));
        changed();
        req.log.info({ runId: run.id, name: run.name }, 'run created by admin');
        return reply.code(201).send({ run: summary(run), url: `${req.protocol}://${req.host}/admin#run=${run.id}` });
      });

      admin.post('/api/specs/preview', { bodyLimit: BODY_LIMITS.spec }, async (req): Promise<SpecPreview> => {
        const body = specBody(req.body);
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
        admin.post<{ Params: { id: string } }>(`/api/runs/:id/${verb}`, async (req) => {
          const run = findRun(req.params.id);
          const rule = VERBS[verb];
          if (!rule.from.includes(run.state)) throw new HttpError('bad_transition', `run ${run.id} is ${run.state}; it cannot be ${rule.done}`);
          ctx.setRunState(run, rule.to);
          changed();
          req.log.info({ runId: run.id, verb, state: run.state }, 'run state set by admin');
          return { run: summary(run) };
        });
      }

      // What may change while a run runs: its share of the grid (the rest of the spec is fixed at creation).
      admin.patch<{ Params: { id: string }; Body: unknown }>('/api/runs/:id', { bodyLimit: 4096 }, async (req) => {
        const run = findRun(req.params.id);
        const body = req.body;
        if (!body || typeof body !== 'object' || Array.isArray(body) || !('share' in body)) throw new HttpError('bad_request', 'send {"share": <a positive number>}: the run\'s weight among running runs');
        const other = Object.keys(body).filter((k) => k !== 'share');
        if (other.length) throw new HttpError('bad_request', `only share can change while a run exists (got ${other.join(', ')})`);
        const share = (body as { share: unknown }).share;
        const bad = shareError(share);
        if (bad) throw new HttpError('bad_request', bad);
        scheduler.setShare(run, share as number);
        store.saveRun(run.record());
        changed();
        req.log.info({ runId: run.id, share }, 'run share set by admin');
        return { run: summary(run) };
      });

      admin.delete<{ Params: { id: string } }>('/api/runs/:id', async (req, reply) => {
        findRun(req.params.id);
        if (!ctx.deleteRun(req.params.id)) throw new HttpError('unknown_run', `no run with id "${req.params.id}"`);
        changed();
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
        return { events: store.events(req.params.id, limit) };
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
        const version = store.latestCheckpoint(req.params.id)?.version ?? run.version;
        const name = run.name.replace(/[^A-Za-z0-9._-]+/g, '-') || 'run';
        return reply
          .type('application/octet-stream')
          .header('content-length', bytes)
          .header('content-disposition', `attachment; filename="${name}-v${version}.safetensors"`)
          .send(createReadStream(file));
      });
    });
  });
}
