// The coordinator under attack, in a process of its own (bench/abuse.node.ts forks it with
// --expose-gc): npm start's app with the default run, its state in a fresh SQLite file and its
// log in a file. It tells its parent when it listens, every join and leave of its event log, and
// answers requests for its memory (after a full GC) and its run's progress. Nothing here attacks.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApp } from '../../server/app.ts';

export type ToCoordinator = { type: 'memory'; id: number } | { type: 'progress'; id: number } | { type: 'stop' };
export type FromCoordinator =
  | { type: 'listening'; url: string; logFile: string }
  | { type: 'event'; kind: string; workerId?: string; message: string; at: number }
  /** A round of the run committed: its examples so far, at this wall-clock time. */
  | { type: 'commit'; samples: number; at: number }
  | { type: 'memory'; id: number; rss: number; heapUsed: number }
  | { type: 'progress'; id: number; samples: number; version: number; workers: number; state: string }
  | { type: 'crash'; message: string };

const send = (m: FromCoordinator) => process.send?.(m);
process.on('uncaughtException', (err) => {
  send({ type: 'crash', message: err.stack ?? String(err) });
  process.exit(70);
});

const root = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'crowdtrain-abuse-'));
const logFile = join(work, 'coordinator.log');
const app = await buildApp({
  dataDir: resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data')),
  // npm start's store is a file in the data directory: the same kind of store, in a fresh place.
  store: new (await import('../../server/store/sqlite-store.ts')).SqliteStore(join(work, 'crowdtrain.db')),
  logger: { level: 'warn', file: logFile },
  adminToken: process.env.ABUSE_ADMIN_TOKEN ?? 'abuse-bench-admin-token-0123456789abcdef',
});
const { scheduler, events } = app.crowdtrain;
const run = [...scheduler.runs.values()][0];
events.subscribe((e) => {
  if (e.kind === 'join' || e.kind === 'leave' || e.kind === 'error') send({ type: 'event', kind: e.kind, workerId: e.workerId, message: e.message, at: Date.now() });
});
scheduler.onCommit((r) => {
  if (r.id === run?.id) send({ type: 'commit', samples: r.samples, at: Date.now() });
});
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
send({ type: 'listening', url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, logFile });

const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (m: ToCoordinator) => {
  if (m.type === 'memory') {
    // Twice: the first pass finalises what the second frees.
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    send({ type: 'memory', id: m.id, rss: u.rss, heapUsed: u.heapUsed });
  } else if (m.type === 'progress') {
    send({ type: 'progress', id: m.id, samples: run?.samples ?? 0, version: run?.version ?? 0, workers: scheduler.workers.size, state: run?.state ?? 'none' });
  } else if (m.type === 'stop') {
    void app.close().then(() => process.exit(0));
  }
});
