// Builds the coordinator's Fastify app with Socket.IO attached, without listening (tests use
// app.inject() or listen on port 0). Each concern lives in its own file: datasets over HTTP,
// run routes, the workers' namespace, the scheduler.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Server } from 'socket.io';
import { WORKER_NAMESPACE } from '../shared/protocol.ts';
import { DEFAULT_RUN_SPEC, MAX_MODEL_PARAMS, parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { answerDatasetRequest, DATASET_PREFIX, mnistShardInfo } from './data/dataset-files.ts';
import { loadMnist } from './data/mnist.ts';
import { Evaluator } from './evaluator.ts';
import { Run } from './run.ts';
import { runRoutes } from './routes/runs.ts';
import { Scheduler, type SchedulerOptions, type WorkerNamespace } from './scheduler.ts';
import { attachWorkerNamespace } from './sockets/worker-namespace.ts';

export interface AppOptions {
  /** Where crowdtrain keeps its state and caches (CROWDTRAIN_DATA_DIR, default ./data). */
  dataDir: string;
  /** The built pages (vite build output); not served when missing. */
  pagesDir?: string;
  logger?: FastifyServerOptions['logger'];
  /** The run created when none exists: true (default) for the built-in one, false for none. */
  defaultRun?: boolean | RunSpecInput;
  maxGradientNorm?: number;
  onFold?: SchedulerOptions['onFold'];
}

/** Largest Socket.IO message: the largest model's parameters as one binary message, plus room. */
export const MAX_MESSAGE_BYTES = MAX_MODEL_PARAMS * 4 + (1 << 20);

declare module 'fastify' {
  interface FastifyInstance {
    crowdtrain: { scheduler: Scheduler; io: Server; createRun: (spec: RunSpecInput) => Run };
  }
}

/**
 * @example const app = await buildApp({ dataDir: './data' }); await app.listen({ port: 0 });
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false });
  const dataDir = resolve(opts.dataDir);
  const mnist = loadMnist(dataDir);
  const evaluator = new Evaluator(mnist.test);

  const io = new Server(app.server, { maxHttpBufferSize: MAX_MESSAGE_BYTES, serveClient: false, cors: { origin: false } });
  const workers = io.of(WORKER_NAMESPACE) as unknown as WorkerNamespace;
  const scheduler = new Scheduler({
    io: workers,
    log: app.log,
    shards: mnistShardInfo(dataDir),
    evaluate: (run) => evaluator.evaluate(run.model, run.params),
    maxGradientNorm: opts.maxGradientNorm,
    onFold: opts.onFold,
  });
  attachWorkerNamespace(workers, scheduler, app.log);
  const createRun = (input: RunSpecInput) => {
    const run = new Run(parseRunSpec(input), mnist.train.count);
    scheduler.addRun(run);
    app.log.info({ runId: run.id, name: run.name }, 'run created');
    return run;
  };
  app.decorate('crowdtrain', { scheduler, io, createRun });
  // preClose, not onClose: the HTTP server waits for open WebSockets before onClose runs.
  app.addHook('preClose', async () => {
    scheduler.close();
    await io.close();
  });
  if (opts.defaultRun !== false) createRun(opts.defaultRun === true || opts.defaultRun === undefined ? DEFAULT_RUN_SPEC : opts.defaultRun);

  app.get('/healthz', async () => ({ ok: true }));
  app.get(`${DATASET_PREFIX}*`, async (req, reply) => {
    const answer = answerDatasetRequest(dataDir, req.url);
    if (!answer) return reply.code(404).send({ error: 'not_found' });
    return reply
      .code(answer.status)
      .headers(answer.headers)
      .send(answer.body instanceof Uint8Array ? Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength) : answer.body);
  });
  runRoutes(app, scheduler);

  if (opts.pagesDir && existsSync(opts.pagesDir)) {
    await app.register(fastifyStatic, { root: resolve(opts.pagesDir), index: ['index.html'] });
  }
  return app;
}
