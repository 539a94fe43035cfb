// Builds the coordinator's Fastify app without listening (tests use app.inject()).
// Each concern is a plugin: datasets over HTTP, the built pages, health.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { answerDatasetRequest, DATASET_PREFIX } from './data/dataset-files.ts';

export interface AppOptions {
  /** Where crowdtrain keeps its state and caches (CROWDTRAIN_DATA_DIR, default ./data). */
  dataDir: string;
  /** The built pages (vite build output); not served when missing. */
  pagesDir?: string;
  logger?: FastifyServerOptions['logger'];
}

/**
 * @example const app = await buildApp({ dataDir: './data' }); const res = await app.inject('/healthz');
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false });
  const dataDir = resolve(opts.dataDir);

  app.get('/healthz', async () => ({ ok: true }));

  app.get(`${DATASET_PREFIX}*`, async (req, reply) => {
    const answer = answerDatasetRequest(dataDir, req.url);
    if (!answer) return reply.code(404).send({ error: 'not_found' });
    return reply.code(answer.status).headers(answer.headers).send(answer.body instanceof Uint8Array ? Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength) : answer.body);
  });

  if (opts.pagesDir && existsSync(opts.pagesDir)) {
    await app.register(fastifyStatic, { root: resolve(opts.pagesDir), index: false });
    app.get('/', async (_req, reply) => reply.redirect('/train.html'));
  }
  return app;
}
