// The wire protocol as a worker sees it: refusal of another protocol version, and malformed
// results rejected with a clear error while the run goes on unharmed.
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PROTOCOL_VERSION, WORKER_NAMESPACE, type TaskMeta } from '../shared/protocol.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

let coord: TestCoordinator;
beforeAll(async () => {
  coord = await startCoordinator({ defaultRun: { sync: { roundDeadlineMs: 3000, minWorkers: 1 }, evalEvery: 1000 } });
});
afterAll(() => coord.close());

describe('handshake', () => {
  test('a worker of another PROTOCOL_VERSION is refused with a clear error', async () => {
    const w = startCpuWorker(coord.url, { protocol: PROTOCOL_VERSION + 1 });
    await waitFor(() => w.stats.state === 'refused', 5000, 'refusal');
    expect(w.stats.message).toBe(
      `crowdtrain protocol ${PROTOCOL_VERSION + 1} is not supported: this coordinator speaks protocol ${PROTOCOL_VERSION}. Reload the page to get the current worker.`,
    );
    w.stop();
  });

  test('a malformed hello is refused naming the bad field', async () => {
    const s = io(`${coord.url}${WORKER_NAMESPACE}`, { auth: { protocol: PROTOCOL_VERSION, backend: 'quantum' }, transports: ['websocket'], reconnection: false });
    const err = await new Promise<Error & { data?: { code: string } }>((resolve) => s.on('connect_error', resolve));
    expect(err.data?.code).toBe('bad_hello');
    expect(err.message).toMatch(/backend/);
    s.close();
  });
});

describe('malformed results are rejected without harming the run', () => {
  let raw: Socket;
  const tasks: { meta: TaskMeta; indices: ArrayBuffer; used?: boolean }[] = [];
  let runId = '';
  let paramCount = 0;

  beforeAll(async () => {
    raw = io(`${coord.url}${WORKER_NAMESPACE}`, { auth: { protocol: PROTOCOL_VERSION, backend: 'cpu' }, transports: ['websocket'] });
    raw.on('welcome', (w) => {
      runId = w.run.id;
      paramCount = w.run.paramCount;
    });
    raw.on('params', (meta) => raw.emit('ready', { runId: meta.runId, version: meta.version }));
    raw.on('task', (meta: TaskMeta, indices: ArrayBuffer) => tasks.push({ meta, indices }));
    await waitFor(() => tasks.length > 0, 5000, 'a task for the raw worker');
  });
  afterAll(() => {
    raw.close();
  });

  const send = (meta: unknown, gradient: unknown) =>
    new Promise<{ ok: boolean; error?: string }>((resolve) => raw.timeout(5000).emit('result', meta, gradient, (err: Error | null, a: { ok: boolean; error?: string }) => resolve(err ? { ok: false, error: 'timeout' } : a)));

  test.for([
    ['unknown task', (t: TaskMeta, n: number) => [{ taskId: 'nope', runId: t.runId, version: t.version, samples: t.count, loss: 1 }, new Float32Array(n).buffer], /unknown task nope/],
    ['missing field', (t: TaskMeta, n: number) => [{ taskId: t.taskId, runId: t.runId, version: t.version, loss: 1 }, new Float32Array(n).buffer], /bad result: samples: /],
    ['extra field', (t: TaskMeta, n: number) => [{ taskId: t.taskId, runId: t.runId, version: t.version, samples: t.count, loss: 1, admin: true }, new Float32Array(n).buffer], /bad result: .*admin/],
    ['JSON array gradient', (t: TaskMeta, n: number) => [{ taskId: t.taskId, runId: t.runId, version: t.version, samples: t.count, loss: 1 }, Array(n).fill(0)], /gradient must be a binary attachment/],
    ['wrong version', (t: TaskMeta, n: number) => [{ taskId: t.taskId, runId: t.runId, version: t.version + 7, samples: t.count, loss: 1 }, new Float32Array(n).buffer], /computed on version \d+, the round is at \d+/],
    ['wrong sample count', (t: TaskMeta, n: number) => [{ taskId: t.taskId, runId: t.runId, version: t.version, samples: t.count + 1, loss: 1 }, new Float32Array(n).buffer], /covers \d+ samples, the task had \d+/],
  ] as const)('%s', async ([, make, error]) => {
    const [meta, gradient] = make(tasks[0].meta, paramCount);
    const ack = await send(meta, gradient);
    expect(ack.ok).toBe(false);
    expect(ack.error).toMatch(error);
  });

  // A task whose gradient failed validation is closed and its examples re-queued: ask for a new one.
  const freshTask = async (): Promise<TaskMeta> => {
    const seen = tasks.length;
    raw.emit('ready', { runId, version: tasks[seen - 1].meta.version });
    await waitFor(() => tasks.length > seen, 5000, 'a fresh task');
    return tasks[tasks.length - 1].meta;
  };

  test.for([
    ['NaN value', (g: Float32Array) => ((g[5] = NaN), g), 1, 'gradient value 5 is NaN'],
    ['infinite value', (g: Float32Array) => ((g[9] = -Infinity), g), 1, 'gradient value 9 is -Infinity'],
    ['wrong length', (g: Float32Array) => g.subarray(3), 1, /gradient has \d+ values, the model has \d+/],
    ['huge norm', (g: Float32Array) => g.fill(1e3), 1, /gradient norm .* exceeds the bound/],
    ['negative loss', (g: Float32Array) => g, -1, 'loss must be a finite number >= 0, got -1'],
  ] as const)('gradient with %s', async ([, damage, loss, error]) => {
    const t = tasks.length === 1 && !tasks[0].used ? ((tasks[0].used = true), tasks[0].meta) : await freshTask();
    const g = damage(new Float32Array(paramCount));
    const ack = await send({ taskId: t.taskId, runId: t.runId, version: t.version, samples: t.count, loss }, g.slice().buffer);
    expect(ack.ok).toBe(false);
    expect(ack.error).toMatch(error);
  });

  test('after all that the coordinator is up and the run trains with an honest worker', async () => {
    const run = coord.app.crowdtrain.scheduler.runs.get(runId)!;
    expect(run.counters.rejected).toBeGreaterThanOrEqual(9);
    const before = run.version;
    const honest = startCpuWorker(coord.url);
    await waitFor(() => run.version >= before + 3, 30_000, 'three rounds with the honest worker');
    expect(run.params.every(Number.isFinite)).toBe(true);
    expect((await coord.app.inject('/healthz')).statusCode).toBe(200);
    const listed = (await coord.app.inject('/api/runs')).json().runs[0];
    expect(listed).toMatchObject({ id: runId, state: 'running' });
    expect(listed.version).toBeGreaterThanOrEqual(before + 3);
    honest.stop();
  });
});
