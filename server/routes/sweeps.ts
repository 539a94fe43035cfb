// Every /api/sweeps route: reading sweeps for anyone (like GET /api/runs), creating one for the
// admin (the same credential as run creation, refused before its body is read). The trials are
// ordinary runs: they are steered through /api/runs. The manager is server/sweeps/sweep-manager.ts.
//
// Public:
//   GET  /api/sweeps       -> {sweeps: SweepView[]} (oldest first)
//   GET  /api/sweeps/:id   -> SweepView | 404 not_found
// Admin (session cookie from the coordinator's own origin, or Authorization: Bearer <token>):
//   POST /api/sweeps       sweep spec as JSON, or YAML/JSON text (application/yaml, text/yaml,
//                          application/x-yaml, text/plain) -> 201 {sweep: SweepView, url}
//                          | 400 invalid_spec {issues: [{path, message}]} naming every bad field
//   POST /api/sweeps/:id/stop -> {sweep: SweepView}: running trials stopped, no more started
//                          | 404 not_found | 409 bad_transition (the sweep has already ended)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SweepView } from '../../shared/rest-types.ts';
import { parseSweepSpec, parseSweepSpecText, SweepSpecError } from '../../shared/sweep-spec.ts';
import { requireAdmin } from '../auth.ts';
import { HttpError, sendError } from '../errors.ts';
import type { SweepManager } from '../sweeps/sweep-manager.ts';
import { BODY_LIMITS } from '../web-security.ts';
import { describeRunError, SPEC_CONTENT_TYPES } from './runs.ts';

/** A bad sweep spec names each bad field; anything else is mapped as for a run spec (a trial's run spec, YAML, the body). */
export function describeSweepError(err: unknown, req?: FastifyRequest): HttpError {
  if (err instanceof SweepSpecError || (err instanceof Error && err.name === 'SweepSpecError' && Array.isArray((err as SweepSpecError).issues))) {
    const e = err as SweepSpecError;
    return new HttpError('invalid_spec', `invalid sweep spec: ${e.message}`, { issues: e.issues });
  }
  const e = describeRunError(err, req);
  return e.code === 'invalid_spec' ? new HttpError('invalid_spec', e.message.replace(/^invalid run spec/, 'invalid sweep spec: a trial is not a valid run'), e.extra) : e;
}

export interface SweepsPluginOptions {
  /** Told when a sweep was created here (its trials are runs: the admin feed pushes its list). */
  onRunsChanged?: () => void;
}

/**
 * @example await sweepsPlugin(app, sweeps, { onRunsChanged: adminFeed.pushRuns });
 */
export async function sweepsPlugin(app: FastifyInstance, sweeps: SweepManager, opts: SweepsPluginOptions = {}): Promise<void> {
  await app.register(async (scope) => {
    scope.setErrorHandler((err, req, reply) => {
      const e = describeSweepError(err, req);
      if (e.statusCode >= 500) req.log.error({ err }, 'sweep route failed');
      return sendError(reply, e);
    });

    scope.get('/api/sweeps', async (): Promise<{ sweeps: SweepView[] }> => ({ sweeps: sweeps.list() }));

    scope.get<{ Params: { id: string } }>('/api/sweeps/:id', async (req): Promise<SweepView> => {
      const sweep = sweeps.get(req.params.id);
      if (!sweep) throw new HttpError('not_found', `no sweep with id "${req.params.id}"`);
      return sweep;
    });

    await scope.register(async (admin) => {
      admin.addHook('onRequest', requireAdmin);
      admin.addContentTypeParser(SPEC_CONTENT_TYPES, { parseAs: 'string' }, (_req, body, done) => done(null, body));

      admin.post('/api/sweeps', { bodyLimit: BODY_LIMITS.spec }, async (req, reply) => {
        const body = req.body;
        if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) {
          throw new HttpError('invalid_spec', 'send a sweep spec: a JSON object, or YAML text with content-type application/yaml', { issues: [] });
        }
        const spec = typeof body === 'string' ? parseSweepSpecText(body) : parseSweepSpec(body);
        const sweep = sweeps.start(spec);
        opts.onRunsChanged?.();
        req.log.info({ sweepId: sweep.id, name: sweep.name }, 'sweep created by admin');
        return reply.code(201).send({ sweep, url: `${req.protocol}://${req.host}/api/sweeps/${sweep.id}` });
      });

      admin.post<{ Params: { id: string } }>('/api/sweeps/:id/stop', async (req) => {
        const before = sweeps.get(req.params.id);
        if (!before) throw new HttpError('not_found', `no sweep with id "${req.params.id}"`);
        if (before.state !== 'running') throw new HttpError('bad_transition', `sweep ${before.id} is ${before.state}; it cannot be stopped`);
        const sweep = sweeps.stop(req.params.id)!;
        opts.onRunsChanged?.();
        req.log.info({ sweepId: sweep.id }, 'sweep stopped by admin');
        return { sweep };
      });
    });
  });
}
