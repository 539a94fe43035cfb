// Limits on what one worker socket can do to the coordinator: message floods are dropped and the
// flooder cut off while honest workers train and the coordinator answers; sockets per address
// are capped; pages of other sites cannot open worker sockets; worker records reach the store in
// batches. Validation of each message's content belongs in protocol.test.ts.
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, test } from 'vitest';
import type { RunEvent } from '../server/event-log.ts';
import { SocketLimiter, WORKER_EVENT_LIMITS, workerEventLimits, type LimitedEvent } from '../server/sockets/event-limits.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import type { WorkerRecord } from '../server/store/store.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { PROTOCOL_VERSION, WORKER_NAMESPACE, type TaskMeta } from '../shared/protocol.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const open: { coords: TestCoordinator[]; workers: WorkerClient[]; sockets: Socket[]; threads: Worker[] } = { coords: [], workers: [], sockets: [], threads: [] };
afterEach(async () => {
  for (const t of open.threads.splice(0)) await t.terminate();
  for (const s of open.sockets.splice(0)) s.close();
  for (const w of open.workers.splice(0)) w.stop();
  for (const c of open.coords.splice(0)) await c.close();
});

const task = (microBatches?: number): TaskMeta => ({
  taskId: 't',
  runId: 'r',
  version: 0,
  leaseMs: 1000,
  count: 16,
  ...(microBatches ? { stage: { index: 0, stages: 2, replica: 0, firstLayer: 0, endLayer: 1, paramOffset: 0, paramCount: 1, microBatches: Array(microBatches).fill(4) } } : {}),
});

describe('per-socket event limits (time injected)', () => {
  test('an honest worker, however fast its tasks, is never held back', () => {
    let t = 0;
    const limiter = new SocketLimiter(WORKER_EVENT_LIMITS, t);
    // 5,000 tasks a second for 10 s, each answered with a result, a status and a ready.
    let refused = 0;
    for (let i = 0; i < 50_000; i++, t += 0.2) {
      limiter.taskSent(task());
      for (const e of ['result', 'status', 'ready'] as const) if (limiter.admit(e, t) !== 'ok') refused++;
    }
    expect(refused).toBe(0);
    // A pipeline stage of 256 micro-batches relays one activation and one gradient per micro-batch.
    limiter.taskSent(task(256));
    for (let mb = 0; mb < 512; mb++) expect(limiter.admit('relay', t)).toBe('ok');
    // The largest result, 32 chunks of 4 MiB, twice back to back.
    for (let c = 0; c < 64; c++) expect(limiter.admit('chunk', t)).toBe('ok');
  });

  test('a burst past the limit is dropped but forgiven; a flood that keeps going is cut off after sustainMs', () => {
    const limits = workerEventLimits();
    const { burst, perSec } = limits.events.status;
    let t = 0;
    const limiter = new SocketLimiter(limits, t);
    const answers = Array.from({ length: burst + 10 }, () => limiter.admit('status', t));
    expect(answers.slice(0, burst).every((a) => a === 'ok')).toBe(true);
    expect(answers.slice(burst)).toEqual(['first-drop', ...Array(9).fill('drop')]);
    // Quiet past quietMs: the spell is over, and the refilled bucket takes messages again.
    t += limits.quietMs + 1;
    expect(limiter.admit('status', t)).toBe('ok');

    // Now 2,000 a second without a task: perSec of them pass, the rest drop, then the cut.
    const start = t;
    let ok = 0;
    let firstDrop = -1;
    let cutAt = -1;
    for (let i = 0; cutAt < 0 && i < 100_000; i++, t += 0.5) {
      const a = limiter.admit('status', t);
      if (a === 'ok') ok++;
      if (a === 'first-drop') firstDrop = t;
      if (a === 'cut') cutAt = t;
    }
    expect(firstDrop).toBeGreaterThan(start);
    expect(cutAt - firstDrop).toBe(limits.sustainMs);
    // What the quiet second refilled, then perSec.
    expect(ok).toBeLessThanOrEqual(Math.ceil(((limits.quietMs + 1) * perSec) / 1000 + ((cutAt - start) * perSec) / 1000));
  });
});

describe('worker records are written in batches', () => {
  test('10,000 renames of one worker become one row written, with the last nickname, at the flush', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'crowdtrain-batch-')), 'crowdtrain.db');
    const store = new SqliteStore(path);
    const reader = new Database(path, { readonly: true });
    try {
      const row = () => reader.prepare('SELECT nickname FROM workers WHERE worker_id = ?').get('w1') as { nickname: string } | undefined;
      const base: WorkerRecord = { runId: 'r1', workerId: 'w1', nickname: null, backend: 'cpu', adapter: '', tasksDone: 0, samples: 0, rejected: 0, firstSeen: 1, lastSeen: 1 };
      for (let i = 0; i < 10_000; i++) store.saveWorker({ ...base, nickname: `n${i}`, lastSeen: i });
      expect(row()).toBeUndefined();
      expect(store.workerBatch.size).toBe(1);
      await waitFor(() => row()?.nickname === 'n9999', 5000, 'the batch flush');
      expect(store.workerBatch.written).toEqual({ rows: 1, flushes: 1 });

      // A read through the store sees a pending record at once; close() writes what waits.
      store.saveWorker({ ...base, nickname: 'read-through' });
      expect(store.workers('r1')[0].nickname).toBe('read-through');
      store.saveWorker({ ...base, nickname: 'at-close' });
      store.close();
      expect(row()?.nickname).toBe('at-close');
    } finally {
      reader.close();
      store.close();
    }
  });
});

/** How a flooding worker misbehaves: which event it sends as fast as it can, and what it sends. */
const FLOODS = ['status', 'ready', 'result', 'chunk', 'relay'] as const satisfies readonly LimitedEvent[];

/**
 * Flooding sockets in a worker thread, so that their sending does not share the coordinator's
 * event loop: one socket per kind, each sending `perSec` messages a second (bounded so that the
 * flooder's own work does not starve the coordinator of this machine's cores, which would say
 * nothing about the coordinator). Reports { kind, type, sent, at } on connection, every 100 ms
 * while sending, and on disconnection, with `at` from Date.now().
 */
const FLOODER = `
const { parentPort, workerData } = require('node:worker_threads');
const { io } = require(workerData.client);
const { url, kinds, protocol, perSec } = workerData;
for (const kind of kinds) {
  const s = io(url, { auth: { protocol, backend: 'cpu', nickname: 'flood' }, transports: ['websocket'], forceNew: true, reconnection: false });
  let runId = 'none', sent = 0;
  const bytes = () => new ArrayBuffer(64);
  const send = {
    status: () => s.emit('status', { paused: false, cap: 1, samplesPerSec: 1, nickname: 'flood-' + sent }),
    ready: () => s.emit('ready', { runId, version: 0 }),
    result: () => s.emit('result', { taskId: 'forged-' + sent, runId, version: 0, samples: 16, loss: 1 }, bytes()),
    chunk: () => s.emit('chunk', { stream: 's' + (sent % 4), index: 0, count: 2, total: 128 }, bytes()),
    relay: () => s.emit('relay', { taskId: 'forged', mb: 0, kind: 'activation' }, bytes()),
  }[kind];
  let started = 0;
  const pump = () => {
    if (!s.connected) return;
    for (const due = ((Date.now() - started) * perSec) / 1000; sent < due; sent++) send();
    setTimeout(pump, 5);
  };
  s.on('welcome', (w) => { runId = w.run ? w.run.id : 'none'; });
  s.on('connect', () => {
    started = Date.now();
    parentPort.postMessage({ kind, type: 'connected', sent, at: started });
    const progress = setInterval(() => (s.connected ? parentPort.postMessage({ kind, type: 'sending', sent, at: Date.now() }) : clearInterval(progress)), 100);
    pump();
  });
  s.on('disconnect', (reason) => parentPort.postMessage({ kind, type: 'disconnected', reason, sent, at: Date.now() }));
}
`;

interface FloodReport {
  kind: (typeof FLOODS)[number];
  type: 'connected' | 'sending' | 'disconnected';
  sent: number;
  at: number;
}

function startFlood(url: string, kinds: readonly (typeof FLOODS)[number][], perSec: number): FloodReport[] {
  const reports: FloodReport[] = [];
  const client = createRequire(import.meta.url).resolve('socket.io-client');
  const thread = new Worker(FLOODER, { eval: true, workerData: { url: `${url}${WORKER_NAMESPACE}`, kinds, protocol: PROTOCOL_VERSION, client, perSec } });
  thread.on('message', (r: FloodReport) => reports.push(r));
  open.threads.push(thread);
  return reports;
}

/** Latencies of GET /healthz, one request every 5 ms, for `ms` or until `done`. */
async function probeHealthz(url: string, ms: number, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  for (const end = Date.now() + ms; !done() && Date.now() < end; ) {
    const t0 = performance.now();
    const res = await fetch(`${url}/healthz`);
    await res.arrayBuffer();
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return latencies;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

describe('floods', () => {
  // A small MLP: the honest CPU worker computes on the test's event loop, which the coordinator
  // shares, so a bigger model would show its compute time in /healthz, not the flood's cost.
  const trainingRun = { model: { layers: [784, 16, 10] }, batchPerTask: 16, evalEvery: 1000, checkpointEvery: 100_000, sync: { minWorkers: 1, roundDeadlineMs: 15_000 } };

  test('a socket renaming itself thousands of times a second is cut off within 5 s; an honest worker trains on and /healthz stays fast', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'crowdtrain-flood-')), 'crowdtrain.db');
    const store = new SqliteStore(path);
    const coord = await startCoordinator({ store, defaultRun: trainingRun });
    open.coords.push(coord);
    const { scheduler, events } = coord.app.crowdtrain;
    const runId = [...scheduler.runs.keys()][0];
    const log: RunEvent[] = [];
    events.subscribe((e) => log.push(e));
    const lastNickname = new Map<string, string | undefined>();
    let renames = 0;
    scheduler.onWorkerChange((w) => {
      if (w.hello.nickname?.startsWith('flood-')) renames++;
      lastNickname.set(w.id, w.hello.nickname);
    });

    const honest = startCpuWorker(coord.url, { hello: { nickname: 'honest' } });
    open.workers.push(honest);
    await waitFor(() => honest.stats.tasksDone >= 3, 30_000, 'the honest worker to train');
    const rowsBefore = store.workerBatch.written.rows;

    const cutOff = () => log.find((e) => e.kind === 'leave' && e.message.includes('cut off'));
    const calmStart = { tasks: honest.stats.tasksDone, at: performance.now() };
    const calm = await probeHealthz(coord.url, 1000, () => false);
    const calmRate = ((honest.stats.tasksDone - calmStart.tasks) * 1000) / (performance.now() - calmStart.at);
    const flood = startFlood(coord.url, ['status'], 10_000);
    await waitFor(() => flood.length > 0, 5000, 'the flooder to connect');
    const floodStart = { tasks: honest.stats.tasksDone, at: performance.now() };
    const latencies = await probeHealthz(coord.url, 15_000, () => cutOff() !== undefined);
    const tasksDuringFlood = honest.stats.tasksDone - floodStart.tasks;
    const floodRate = (tasksDuringFlood * 1000) / (performance.now() - floodStart.at);
    const cut = cutOff();
    expect(cut, 'the flooder cut off').toBeDefined();
    const joined = log.find((e) => e.kind === 'join' && e.workerId === cut!.workerId)!;
    const cutMs = cut!.time - joined.time;
    const sent = flood.findLast((r) => r.at <= cut!.time)!.sent;
    const p50 = percentile(latencies, 0.5);
    const p95 = percentile(latencies, 0.95);
    console.log(
      `status flood: ${sent} sent in ${(cutMs / 1000).toFixed(2)} s (${Math.round(sent / (cutMs / 1000))}/s), ${renames} renames passed, cut after ${cutMs} ms; ` +
        `/healthz p50 ${p50.toFixed(1)} ms p95 ${p95.toFixed(1)} ms over ${latencies.length} requests (calm: p50 ${percentile(calm, 0.5).toFixed(1)} p95 ${percentile(calm, 0.95).toFixed(1)}); honest worker ${floodRate.toFixed(0)} tasks/s during the flood (calm: ${calmRate.toFixed(0)}); ` +
        `worker rows written ${store.workerBatch.written.rows - rowsBefore}`,
    );

    expect(cutMs).toBeLessThan(5000);
    expect(cut!.message).toMatch(/cut off: over the status rate limit/);
    await waitFor(() => flood.some((r) => r.type === 'disconnected'), 5000, 'the flooder to see its disconnection');
    expect(sent).toBeGreaterThan(2000); // thousands a second, so the limit was what cut it off
    expect(p95).toBeLessThan(250);
    expect(tasksDuringFlood).toBeGreaterThan(3);
    expect(honest.stats.state).toBe('training');
    expect(scheduler.workers.get(honest.stats.workerId!)).toBeDefined();
    // Renames reached the scheduler (up to the limit), and each second wrote a row or two, not one per rename.
    expect(renames).toBeGreaterThan(50);
    expect(store.workerBatch.written.rows - rowsBefore).toBeLessThan(renames / 5);
    // The last nickname the coordinator accepted from the flooder reaches the database file with
    // the next flush (read beside the store, so that no read through it flushes first).
    const reader = new Database(path, { readonly: true });
    try {
      const stored = () => (reader.prepare('SELECT nickname FROM workers WHERE run_id = ? AND worker_id = ?').get(runId, cut!.workerId) as { nickname: string } | undefined)?.nickname;
      expect(lastNickname.get(cut!.workerId!)).toMatch(/^flood-\d+$/);
      await waitFor(() => stored() === lastNickname.get(cut!.workerId!), 5000, "the flooder's last nickname in the database");
    } finally {
      reader.close();
    }
  }, 60_000);

  test('a flood of each other kind of message is cut off within 5 s', async () => {
    const coord = await startCoordinator({ defaultRun: trainingRun });
    open.coords.push(coord);
    const log: RunEvent[] = [];
    coord.app.crowdtrain.events.subscribe((e) => log.push(e));
    const kinds = FLOODS.filter((k) => k !== 'status');
    const flood = startFlood(coord.url, kinds, 5000);
    await waitFor(() => flood.filter((r) => r.type === 'disconnected').length === kinds.length, 15_000, 'every flooder to be disconnected');
    for (const kind of kinds) {
      const connected = flood.find((r) => r.kind === kind && r.type === 'connected')!;
      const gone = flood.find((r) => r.kind === kind && r.type === 'disconnected')!;
      console.log(`${kind} flood: ${gone.sent} sent, disconnected after ${gone.at - connected.at} ms`);
      expect(gone.at - connected.at, kind).toBeLessThan(5000);
    }
    const cuts = log.filter((e) => e.kind === 'leave' && e.message.includes('cut off'));
    expect(cuts.map((e) => e.message.match(/over the (\w+) rate limit/)?.[1]).sort()).toEqual([...kinds].sort());
  }, 30_000);
});

/** A worker socket as a Node client opens it: no Origin unless `origin` is given. */
function connect(url: string, origin?: string): Socket {
  const s = io(`${url}${WORKER_NAMESPACE}`, {
    auth: { protocol: PROTOCOL_VERSION, backend: 'cpu' },
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    ...(origin ? { extraHeaders: { origin } } : {}),
  });
  open.sockets.push(s);
  return s;
}

function outcome(s: Socket): Promise<{ connected: true } | { connected: false; code?: string; message: string }> {
  return new Promise((resolve) => {
    s.once('connect', () => resolve({ connected: true }));
    s.once('connect_error', (err: Error & { data?: { code: string } }) => resolve({ connected: false, code: err.data?.code, message: err.message }));
  });
}

describe('handshake limits', () => {
  test('sockets past the cap from one address are refused with a clear message, and a place frees when one leaves', async () => {
    const coord = await startCoordinator({ defaultRun: false, maxWorkersPerAddress: 3 });
    open.coords.push(coord);
    const first = [connect(coord.url), connect(coord.url), connect(coord.url)];
    expect(await Promise.all(first.map(outcome))).toEqual([{ connected: true }, { connected: true }, { connected: true }]);
    const refused = await outcome(connect(coord.url));
    expect(refused).toMatchObject({ connected: false, code: 'too_many_sockets' });
    expect((refused as { message: string }).message).toMatch(/^3 workers are already connected from your address \(.*127\.0\.0\.1\), the most this coordinator accepts from one/);

    first[0].close();
    await waitFor(() => coord.app.crowdtrain.scheduler.workers.size === 2, 5000, 'the closed socket to leave');
    expect(await outcome(connect(coord.url))).toEqual({ connected: true });
  });

  test("a page of another site and a long-polling client are refused; the coordinator's own pages, listed origins and Node workers are accepted", async () => {
    const coord = await startCoordinator({ defaultRun: false, workerOrigins: ['https://school.example'] });
    open.coords.push(coord);
    const foreign = await outcome(connect(coord.url, 'https://evil.example'));
    expect(foreign).toMatchObject({ connected: false, code: 'origin_not_allowed' });
    expect((foreign as { message: string }).message).toMatch(/^pages on https:\/\/evil\.example may not join this coordinator as workers/);
    expect(await outcome(connect(coord.url, 'null'))).toMatchObject({ connected: false, code: 'origin_not_allowed' });
    // Same host name, another port: another origin.
    expect(await outcome(connect(coord.url, 'http://127.0.0.1:1'))).toMatchObject({ connected: false, code: 'origin_not_allowed' });

    // Long-polling, whatever the origin: a polling request decodes megabytes of messages at once.
    const polling = io(`${coord.url}${WORKER_NAMESPACE}`, { auth: { protocol: PROTOCOL_VERSION, backend: 'cpu' }, transports: ['polling'], forceNew: true, reconnection: false });
    open.sockets.push(polling);
    expect(await outcome(polling)).toMatchObject({ connected: false, code: 'websocket_only' });

    expect(await outcome(connect(coord.url, coord.url))).toEqual({ connected: true });
    expect(await outcome(connect(coord.url, 'https://school.example'))).toEqual({ connected: true });
    expect(await outcome(connect(coord.url))).toEqual({ connected: true });
  });
});
