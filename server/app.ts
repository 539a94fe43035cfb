// Builds the coordinator's Fastify app with Socket.IO attached, without listening (tests use
// app.inject() or listen on port 0). It opens the store, restores the runs it holds (each from
// its latest checkpoint), and wires the plugins: datasets, run routes, admin, metrics, sockets.
import { existsSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Server } from 'socket.io';
import { labelWidthOf, sliceExamples } from '../shared/dataset.ts';
import { WORKER_NAMESPACE } from '../shared/protocol.ts';
import { checkSpecAgainstDataset, DEFAULT_RUN_SPEC, parseRunSpec, RunSpecError, type RunSpecInput } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { readCheckpointFile, restoreCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { CoordinatorContext } from './context.ts';
import { DATASET_PREFIX } from './data/dataset-files.ts';
import { DatasetRegistry } from './data/registry.ts';
import type { Clock } from './clock.ts';
import { EvalThread } from './eval-thread.ts';
import { Evaluator } from './evaluator.ts';
import { modelLine } from '../shared/run-model.ts';
import { EventLog } from './event-log.ts';
import { answerPlainHttp } from './https-redirect.ts';
import { Run } from './run.ts';
import { adminPlugin } from './routes/admin.ts';
import { boardPlugin } from './routes/board.ts';
import { datasetRoutes } from './routes/datasets.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { registerParamRoutes } from './routes/params.ts';
import { runsPlugin } from './routes/runs.ts';
import { sweepsPlugin } from './routes/sweeps.ts';
import { SweepManager } from './sweeps/sweep-manager.ts';
import { Scheduler, type SchedulerOptions, type WorkerNamespace } from './scheduler.ts';
import { SocketPort } from './sockets/socket-port.ts';
import type { WorkerEventLimits } from './sockets/event-limits.ts';
import { limitConnections } from './sockets/connection-limits.ts';
import { attachWorkerNamespace } from './sockets/worker-namespace.ts';
import { trustRoutes } from './routes/trust.ts';
import type { VerificationOptions } from './verification/verification.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { Store } from './store/store.ts';
import { BODY_LIMITS, TIME_LIMITS, webSecurity } from './web-security.ts';
import { countTraffic, type Traffic } from './worker-port.ts';

export interface AppOptions {
  /** Where crowdtrain keeps its state and caches (CROWDTRAIN_DATA_DIR, default ./data). */
  dataDir: string;
  /** The built pages (vite build output); not served when missing. */
  pagesDir?: string;
  logger?: FastifyServerOptions['logger'];
  /** The run created when the store holds none: true (default) for the built-in one, false for none. */
  defaultRun?: boolean | RunSpecInput;
  maxGradientNorm?: number;
  /** Spot checks of workers' results (default: on, verification/trust.ts's policy); false: none. */
  verification?: VerificationOptions | false;
  onFold?: SchedulerOptions['onFold'];
  /** Time for rounds, leases and paces (tests pass a ManualClock); default the system clock. */
  clock?: Clock;
  /** The store; default SQLite at <dataDir>/crowdtrain.db. */
  store?: Store;
  /**
   * Where evaluations run: 'thread' (default), a worker thread, off the event loop; 'inline', on
   * the event loop at the commit (its numbers are on the round's point when the commit returns).
   */
  evaluation?: 'thread' | 'inline';
  /** Admin token (CROWDTRAIN_ADMIN_TOKEN); when unset one is generated at first start. */
  adminToken?: string;
  /** Told the generated admin token, once, at first start (the CLI prints it). */
  onAdminTokenCreated?: (token: string) => void;
  /**
   * Most worker sockets open at once from one remote address (default 64: a classroom behind one
   * NAT shares an address; behind a reverse proxy every worker has the proxy's).
   */
  maxWorkersPerAddress?: number;
  /**
   * Page origins, besides the coordinator's own, whose tabs may join as workers (for example a
   * site that embeds the worker page: 'https://crowdtrain.example.org').
   */
  workerOrigins?: string[];
  /** Per-socket rate limits on worker messages (default WORKER_EVENT_LIMITS). */
  workerEventLimits?: WorkerEventLimits;
  /** Serve HTTPS with this certificate and key (PEM; see server/tls.ts); plain HTTP when unset. */
  https?: { cert: string; key: string };
}

/**
 * Largest Socket.IO message: parameters and results past CHUNK_BYTES come in chunks, snapshots over
 * HTTP; this leaves room for a pipeline stage's relayed activations.
 */
export const MAX_MESSAGE_BYTES = 16 << 20;

declare module 'fastify' {
  interface FastifyInstance {
    crowdtrain: CoordinatorContext;
  }
}

/**
 * @example const app = await buildApp({ dataDir: './data' }); await app.listen({ port: 0 });
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  // With `https` Fastify makes an https.Server; Socket.IO and every route work on either.
  // Body and time limits (server/web-security.ts): a slow or huge request cannot hold the coordinator.
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: BODY_LIMITS.json, ...TIME_LIMITS, ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}) }) as FastifyInstance;
  // Plain http sent to the HTTPS port (a bookmark, an address typed without https://) is redirected.
  if (opts.https) answerPlainHttp(app.server as unknown as HttpsServer);
  const dataDir = resolve(opts.dataDir);
  const store = opts.store ?? new SqliteStore(join(dataDir, 'crowdtrain.db'));
  await webSecurity(app, store);
  const datasets = new DatasetRegistry(dataDir);
  for (const skipped of datasets.skipped) app.log.error({ dataset: skipped }, 'uploaded dataset not loaded');
  const events = new EventLog((e) => store.appendEvent(e));
  // A run evaluates the first `evalExamples` of its dataset's test split (all when unset): the same
  // examples at every evaluation, held once per dataset and count.
  const testOf = (run: Run) => {
    const ds = datasets.get(run.dataset.name);
    if (!ds) throw new Error(`dataset ${run.dataset.name} is gone`);
    return ds.test;
  };
  const evalCount = (run: Run) => Math.min(run.spec.evalExamples ?? Infinity, testOf(run).count);
  const evaluators = new Map<string, Evaluator>();
  const evalThread = opts.evaluation === 'inline' ? null : new EvalThread();
  const evaluate: SchedulerOptions['evaluate'] = (run) => {
    const key = `${run.dataset.name}:${evalCount(run)}`;
    if (evalThread) {
      const { layers, inputShape } = run.net;
      return evalThread.evaluate(run.id, { key, examples: () => sliceExamples(testOf(run), 0, evalCount(run)), layers, inputShape, params: run.params });
    }
    let e = evaluators.get(key);
    if (!e) evaluators.set(key, (e = new Evaluator(testOf(run), evalCount(run))));
    return e.evaluate(run.net, run.params);
  };

  const io = new Server(app.server, { maxHttpBufferSize: MAX_MESSAGE_BYTES, serveClient: false, cors: { origin: false } });
  // Before any namespace sees a packet: handshake floods and events no handler takes close the connection.
  limitConnections(io, app.log);
  const workers = io.of(WORKER_NAMESPACE) as unknown as WorkerNamespace;
  const traffic: Traffic = { bytesIn: 0, bytesOut: 0, runs: new Map() };
  const port = new SocketPort(workers, traffic);
  const scheduler = new Scheduler({
    port,
    traffic,
    clock: opts.clock,
    log: app.log,
    evaluate,
    maxGradientNorm: opts.maxGradientNorm,
    onFold: opts.onFold,
    verification: opts.verification ?? {},
    events,
    labels: (run, indices) => {
      const train = datasets.get(run.dataset.name)!.train;
      const width = labelWidthOf(train);
      const out = new Uint32Array(indices.length * width);
      indices.forEach((i, row) => out.set(train.y.subarray(i * width, (i + 1) * width), row * width));
      return out;
    },
  });
  attachWorkerNamespace(workers, port, scheduler, app.log, { maxWorkersPerAddress: opts.maxWorkersPerAddress, allowedOrigins: opts.workerOrigins, limits: opts.workerEventLimits });
  registerParamRoutes(app, (runId) => scheduler.channelById(runId), { onServed: (runId, bytes) => countTraffic(traffic, runId, 'httpOut', bytes) });

  const checkpoint = (run: Run, why: string) => {
    if (run.version === 0 || store.latestCheckpoint(run.id)?.version === run.version) return;
    try {
      store.addCheckpoint(saveCheckpoint(run, dataDir));
      events.append(run.id, 'checkpoint', `checkpoint at round ${run.version} (${why})`);
    } catch (err) {
      app.log.error({ runId: run.id, err }, 'checkpoint failed');
      events.append(run.id, 'error', `checkpoint at round ${run.version} failed: ${(err as Error).message}`);
    }
  };
  scheduler.onCommit((run) => {
    store.appendMetric(run.id, run.metrics.at(-1)!);
    if (run.version % run.spec.checkpointEvery === 0 || run.state === 'completed') checkpoint(run, run.state === 'completed' ? 'completed' : 'interval');
    store.saveRun(run.record());
  });
  scheduler.onEvaluated((run, version, point) => {
    if (point) store.setMetricEvaluation(run.id, version, point.accuracy, point.evalLoss);
    if (run.state === 'completed') checkpoint(run, 'completed');
    store.saveRun(run.record());
  });
  scheduler.onWorkerChange((w, run) => {
    const adapter = [w.hello.adapter.vendor, w.hello.adapter.architecture, w.hello.adapter.description].filter(Boolean).join(' ');
    store.saveWorker({ runId: run.id, workerId: w.id, nickname: w.hello.nickname ?? null, backend: w.hello.backend, adapter, tasksDone: w.tasksDone, samples: w.samples, rejected: w.rejected, firstSeen: w.joinedAt, lastSeen: w.lastSeen });
  });

  const datasetFor = (spec: ReturnType<typeof parseRunSpec>) => {
    const ds = datasets.forSpec(spec);
    if (!ds) throw new RunSpecError([{ path: 'dataset', message: `no dataset named "${spec.dataset}"; available: ${datasets.list().map((d) => d.name).join(', ')}` }]);
    checkSpecAgainstDataset(spec, ds.info);
    return ds;
  };

  // Trials are made and stopped through the run verbs below, as an admin's would be.
  const sweeps = new SweepManager({ scheduler, store, events, log: app.log, createRun: (spec) => ctx.createRun(spec), setRunState: (run, state) => ctx.setRunState(run, state) });

  const ctx: CoordinatorContext = {
    dataDir,
    datasets,
    scheduler,
    store,
    events,
    io,
    sweeps,
    createRun(input: unknown) {
      const spec = typeof input === 'string' ? parseRunSpecText(input) : parseRunSpec(input);
      const run = new Run(spec, datasetFor(spec).info);
      scheduler.addRun(run);
      store.saveRun(run.record());
      events.append(run.id, 'created', `run ${run.name} created: ${modelLine(run.net)}, ${spec.optimizer.kind} lr ${spec.optimizer.lr}`);
      app.log.info({ runId: run.id, name: run.name }, 'run created');
      return run;
    },
    setRunState(run, state) {
      scheduler.setState(run, state);
      if (state !== 'running') checkpoint(run, state);
      store.saveRun(run.record());
    },
    deleteRun(id) {
      const run = scheduler.runs.get(id);
      if (!run) return false;
      scheduler.removeRun(run);
      store.deleteRun(id);
      return true;
    },
    latestCheckpointFile(runId) {
      const c = store.latestCheckpoint(runId);
      return c ? join(dataDir, c.path) : undefined;
    },
  };
  app.decorate('crowdtrain', ctx);

  restoreRuns(ctx, app);
  sweeps.restore();
  if (scheduler.runs.size === 0 && opts.defaultRun !== false) ctx.createRun(opts.defaultRun === true || opts.defaultRun === undefined ? DEFAULT_RUN_SPEC : opts.defaultRun);

  // preClose, not onClose: the HTTP server waits for open WebSockets before onClose runs.
  app.addHook('preClose', async () => {
    sweeps.close();
    scheduler.close();
    await evalThread?.close();
    await io.close();
  });
  app.addHook('onClose', async () => {
    for (const run of scheduler.runs.values()) store.saveRun(run.record());
    store.close();
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/api/datasets', async (req, reply) => {
    const answer = datasets.answer(req.url)!;
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  app.get(`${DATASET_PREFIX}*`, async (req, reply) => {
    const answer = datasets.answer(req.url);
    if (!answer) return reply.code(404).send({ error: 'not_found', message: `nothing at ${req.url}` });
    return reply
      .code(answer.status)
      .headers(answer.headers)
      .send(answer.body instanceof Uint8Array ? Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength) : answer.body);
  });
  const adminFeed = await adminPlugin(app, ctx, { adminToken: opts.adminToken, onTokenCreated: opts.onAdminTokenCreated });
  await runsPlugin(app, ctx, { onRunsChanged: adminFeed.pushRuns });
  await sweepsPlugin(app, sweeps, { onRunsChanged: adminFeed.pushRuns });
  await trustRoutes(app, ctx);
  await datasetRoutes(app, ctx);
  await boardPlugin(app, ctx, { pagesDir: opts.pagesDir });
  metricsRoutes(app, ctx);

  if (opts.pagesDir && existsSync(opts.pagesDir)) {
    await app.register(fastifyStatic, { root: resolve(opts.pagesDir), index: ['index.html'] });
    app.get('/admin', async (_req, reply) => reply.sendFile('admin.html'));
  }
  return app;
}

/**
 * Brings back every run the store holds. A run that was running continues from its latest
 * checkpoint (the rounds after it are redone); workers that reconnect get the restored version.
 */
function restoreRuns(ctx: CoordinatorContext, app: FastifyInstance): void {
  for (const rec of ctx.store.listRuns()) {
    const ds = ctx.datasets.forSpec(rec.spec);
    if (!ds) {
      app.log.error({ runId: rec.id, dataset: rec.spec.dataset }, 'run not restored: its dataset is gone');
      continue;
    }
    // Specs stored before a field was added get its default (their checkpoints still load).
    let spec;
    try {
      spec = parseRunSpec(rec.spec);
    } catch (err) {
      app.log.error({ runId: rec.id, err }, 'run not restored: its stored spec no longer validates');
      continue;
    }
    let run: Run;
    try {
      run = new Run(spec, ds.info, rec.id);
    } catch (err) {
      app.log.error({ runId: rec.id, err }, 'run not restored: its model does not fit its dataset');
      continue;
    }
    run.createdAt = rec.createdAt;
    run.state = rec.state;
    run.stopReason = rec.stopReason;
    const checkpoints = ctx.store.checkpoints(rec.id).reverse();
    let restored = false;
    for (const c of checkpoints) {
      try {
        restoreCheckpoint(run, readCheckpointFile(ctx.dataDir, c));
        restored = true;
        break;
      } catch (err) {
        app.log.error({ runId: rec.id, version: c.version, err }, 'checkpoint unreadable; trying an older one');
      }
    }
    if (!restored) {
      run.loss = null;
      run.accuracy = null;
    }
    ctx.store.truncateMetrics(run.id, run.version);
    run.metrics.push(...ctx.store.metrics(run.id, 20_000));
    run.evalLoss = run.metrics.findLast((p) => p.evalLoss !== null)?.evalLoss ?? null;
    ctx.scheduler.addRun(run);
    ctx.store.saveRun(run.record());
    const lost = rec.version - run.version;
    ctx.events.append(run.id, 'resumed', `coordinator restarted: run ${run.state} at round ${run.version}${restored ? ' from its checkpoint' : ' from the start (no checkpoint)'}${lost > 0 ? `; ${lost} round(s) after it will be redone` : ''}`);
    app.log.info({ runId: run.id, version: run.version, state: run.state, lost }, 'run restored');
  }
}
