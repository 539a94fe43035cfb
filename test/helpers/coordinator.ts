// A real coordinator on 127.0.0.1:0 and real Socket.IO workers (the CPU backend, in Node),
// for the protocol, scheduler and equivalence tests. Everything is closed by the caller.
import { mkdtempSync } from 'node:fs';
import { microBatchOf } from '../../shared/run-spec.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../server/app.ts';
import { SqliteStore } from '../../server/store/sqlite-store.ts';
import { cpuBackendFor } from '../../client/worker/backend.ts';
import { cpuStageBackend } from '../../client/worker/stage-backend.ts';
import { WorkerClient, type WorkerClientOptions, type WorkerStats } from '../../client/worker/worker-client.ts';

/** One data dir for the whole test process: MNIST is converted once. */
export const sharedDataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-test-'));

export interface TestCoordinator {
  app: FastifyInstance;
  url: string;
  close: () => Promise<void>;
}

/** Each coordinator gets its own in-memory store unless the test passes one (or a data dir). */
export async function startCoordinator(opts: Partial<AppOptions> = {}): Promise<TestCoordinator> {
  const app = await buildApp({ dataDir: sharedDataDir, ...(opts.dataDir ? {} : { store: new SqliteStore(':memory:') }), ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { app, url, close: () => app.close() };
}

/** A Node worker computing with the CPU backend through the same WorkerClient tabs use. */
export function startCpuWorker(url: string, opts: Partial<WorkerClientOptions> = {}): WorkerClient {
  const w = new WorkerClient({
    url,
    backend: 'cpu',
    makeBackend: async (run) => cpuBackendFor(run, microBatchOf(run.spec)),
    makeStageBackend: async (_run, setup) => cpuStageBackend(setup),
    ...opts,
  });
  w.start();
  return w;
}

/**
 * Polls until `check` is true or `ms` pass. `explain` adds what the coordinator and the tabs were
 * doing to the timeout's message.
 */
export async function waitFor(check: () => boolean, ms: number, what: string, explain?: () => string | Promise<string>): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) {
      const why = explain ? `\n${await Promise.resolve().then(explain).catch((e: Error) => `(could not say: ${e.message})`)}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The coordinator's view of its runs and workers, for a timeout's message. */
export function describeCoordinator(coord: TestCoordinator): string {
  const scheduler = coord.app.crowdtrain.scheduler;
  const now = Date.now();
  const lines: string[] = [];
  for (const run of scheduler.runs.values()) {
    lines.push(`run ${run.id} ${run.state} v${run.version}, ${run.counters.rejected} rejected`);
    for (const t of scheduler.sync.openTasks(run.id)) lines.push(`  open task: worker ${t.workerId}, ${t.examples} examples, sent ${now - t.sentAt} ms ago`);
    for (const w of scheduler.workersOf(run.id)) {
      lines.push(`  worker ${w.id} ${w.hello.backend}: ${w.ready ? 'ready' : 'not ready'} at v${w.version}, ${w.tasksDone} tasks done, ${w.rejected} rejected, last heard ${now - w.lastSeen} ms ago`);
    }
  }
  return lines.join('\n');
}

export type { WorkerStats };
