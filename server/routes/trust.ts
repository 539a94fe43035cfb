// Spot checks, strikes and bans per run (admin only), and where the bans are kept: in the store's
// settings as `bans:<runId>`, so that a restart does not readmit a banned browser. The checks
// themselves are server/verification/'s; this file only shows them and lifts bans.
//
//   GET    /api/runs/:id/trust        -> TrustReport (policy, tolerance, check counts, each
//                                        worker's agreements, strikes and chance of a check, bans)
//                                        | 404 unknown_run
//   DELETE /api/runs/:id/bans/:key    -> {ok: true} (the ban lifted, the strikes cleared)
//                                        | 404 unknown_run | 404 not_found (no such ban)
import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth.ts';
import type { CoordinatorContext } from '../context.ts';
import type { Ban } from '../verification/bans.ts';

const settingKey = (runId: string) => `bans:${runId}`;

/** Parses stored bans; anything malformed is dropped rather than trusted. */
function parseBans(text: string | undefined, runId: string): Ban[] {
  if (!text) return [];
  try {
    const list = JSON.parse(text) as unknown;
    if (!Array.isArray(list)) return [];
    return list
      .filter((b): b is Ban => typeof b === 'object' && b !== null && typeof b.key === 'string' && typeof b.reason === 'string' && typeof b.at === 'number')
      .map((b) => ({ runId, key: b.key, workerId: String(b.workerId ?? ''), reason: b.reason, at: b.at }));
  } catch {
    return [];
  }
}

export async function trustRoutes(app: FastifyInstance, ctx: CoordinatorContext): Promise<void> {
  const { scheduler, store } = ctx;
  const verification = scheduler.verification;
  for (const runId of scheduler.runs.keys()) verification.bans.restore(runId, parseBans(store.getSetting(settingKey(runId)), runId));
  verification.onChange((runId) => {
    if (scheduler.runs.has(runId)) store.setSetting(settingKey(runId), JSON.stringify(verification.bans.of(runId)));
  });

  await app.register(async (admin) => {
    admin.addHook('onRequest', requireAdmin);
    admin.get<{ Params: { id: string } }>('/api/runs/:id/trust', async (req, reply) => {
      if (!scheduler.runs.has(req.params.id)) return reply.code(404).send({ error: 'unknown_run', message: `no run with id "${req.params.id}"` });
      return verification.report(req.params.id);
    });
    admin.delete<{ Params: { id: string; key: string } }>('/api/runs/:id/bans/:key', async (req, reply) => {
      const { id, key } = req.params;
      if (!scheduler.runs.has(id)) return reply.code(404).send({ error: 'unknown_run', message: `no run with id "${id}"` });
      if (!verification.lift(id, key)) return reply.code(404).send({ error: 'not_found', message: `no ban of "${key}" in run ${id}` });
      ctx.events.append(id, 'ban', `ban of ${key} lifted by the admin`);
      app.log.info({ runId: id, key }, 'ban lifted');
      return { ok: true };
    });
  });
}
