// Read-only run REST for anyone: GET /api/runs, GET /api/runs/:id and its leaderboard.
import type { FastifyInstance } from 'fastify';
import type { Scheduler } from '../scheduler.ts';

export function runRoutes(app: FastifyInstance, scheduler: Scheduler): void {
  app.get('/api/runs', async () => ({
    runs: [...scheduler.runs.values()].map((r) => r.summary(scheduler.workersOf(r.id).length)),
  }));

  app.get<{ Params: { id: string } }>('/api/runs/:id', async (req, reply) => {
    const run = scheduler.runs.get(req.params.id);
    if (!run) return reply.code(404).send({ error: 'unknown_run', message: `no run with id "${req.params.id}"` });
    return { ...run.summary(scheduler.workersOf(run.id).length), metrics: run.metrics.slice(-2000) };
  });

  // From the store, so that contributions of tabs long closed (and of earlier coordinator
  // processes) still count.
  app.get<{ Params: { id: string } }>('/api/runs/:id/leaderboard', async (req, reply) => {
    const { store } = app.crowdtrain;
    if (!scheduler.runs.has(req.params.id) && !store.getRun(req.params.id)) return reply.code(404).send({ error: 'unknown_run', message: `no run with id "${req.params.id}"` });
    return { leaderboard: store.leaderboard(req.params.id) };
  });
}
