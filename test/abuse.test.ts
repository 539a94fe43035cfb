// What the abuse benchmark (npm run bench -- abuse) found, kept small: connections that flood
// namespace handshakes or events no handler takes are closed at once, and a few thousand
// fast-check frames and request bodies leave the coordinator answering and its run training.
// Per-event worker limits are worker-limits.test.ts's; the full floods and fuzz are the bench's.
import { afterEach, describe, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { classifyPacket } from '../server/sockets/connection-limits.ts';
import { PROTOCOL_VERSION, WORKER_NAMESPACE } from '../shared/protocol.ts';
import { fuzzBodies, fuzzFrames } from '../bench/abuse/fuzzer.ts';
import { openRaw, until, type RawSocket } from '../bench/abuse/raw-socket.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const open: { coords: TestCoordinator[]; workers: WorkerClient[]; raw: RawSocket[] } = { coords: [], workers: [], raw: [] };
afterEach(async () => {
  for (const s of open.raw.splice(0)) s.ws.terminate();
  for (const w of open.workers.splice(0)) w.stop();
  for (const c of open.coords.splice(0)) await c.close();
});

const ADMIN_TOKEN = 'abuse-test-admin-token-0123456789abcdef';
const trainingRun = { model: { layers: [784, 16, 10] }, batchPerTask: 16, evalEvery: 1000, checkpointEvery: 100_000, sync: { minWorkers: 1, roundDeadlineMs: 15_000 } };
const hello = JSON.stringify({ protocol: PROTOCOL_VERSION, backend: 'cpu' });

test('packets are told apart from their first characters', () => {
  const ns = WORKER_NAMESPACE;
  expect(classifyPacket(`0${ns},${hello}`)).toBe('handshake');
  expect(classifyPacket('0/admin,')).toBe('handshake');
  expect(classifyPacket(`2${ns},["status",{}]`)).toBe('worker-event');
  expect(classifyPacket(`2${ns},12["ready",{}]`)).toBe('worker-event');
  expect(classifyPacket(`51-${ns},3["result",{},{"_placeholder":true,"num":0}]`)).toBe('worker-event');
  expect(classifyPacket(`2${ns},["hello",{}]`)).toBe('stray');
  expect(classifyPacket(`2${ns},["__proto__"]`)).toBe('stray');
  expect(classifyPacket(`2${ns},["stat\\u0075s",{}]`)).toBe('stray');
  expect(classifyPacket('2["status",{}]')).toBe('stray');
  expect(classifyPacket('2/admin,["x"]')).toBe('stray');
  expect(classifyPacket(`3${ns},1[]`)).toBe('stray');
  expect(classifyPacket('1/admin,')).toBe('other');
  expect(classifyPacket('')).toBe('other');
});

/** A raw connection that has sent `frames` as fast as it can; resolves when the server closes it (or after `ms`). */
async function flood(url: string, frames: (i: number) => string, ms: number): Promise<{ sent: number; closedAfterMs: number | null; received: string[] }> {
  const s = openRaw(url);
  open.raw.push(s);
  expect(await s.opened).toBe(true);
  let closedAt: number | null = null;
  void s.closed.then((at) => (closedAt = at));
  const t0 = Date.now();
  let sent = 0;
  while (closedAt === null && Date.now() - t0 < ms) {
    for (let k = 0; k < 100 && s.isOpen(); k++) s.frame(frames(sent++));
    await new Promise((r) => setTimeout(r, 5));
  }
  await until(() => closedAt !== null, 1000);
  return { sent, closedAfterMs: closedAt === null ? null : closedAt - t0, received: s.received };
}

describe('connection limits', () => {
  test('a connection flooding admin handshakes without a session, worker handshakes, or events nobody handles is closed within the 5 s goal (in milliseconds, as measured)', async () => {
    const coord = await startCoordinator({ defaultRun: trainingRun, adminToken: ADMIN_TOKEN });
    open.coords.push(coord);

    const admin = await flood(coord.url, () => '40/admin,', 5000);
    expect(admin.closedAfterMs, 'admin handshake flood closed').not.toBeNull();
    expect(admin.closedAfterMs!).toBeLessThan(5000);
    expect(admin.received.filter((r) => r.startsWith('44/admin,')).length).toBeLessThanOrEqual(4);

    // Handshakes to the workers' namespace: a few may join before the connection goes, not dozens.
    const workers = await flood(coord.url, () => `40${WORKER_NAMESPACE},${hello}`, 5000);
    expect(workers.closedAfterMs).not.toBeNull();
    expect(workers.closedAfterMs!).toBeLessThan(5000);
    await waitFor(() => coord.app.crowdtrain.scheduler.workers.size === 0, 5000, 'the joined workers to leave with their connection');

    for (const [what, join, frame] of [
      ['unknown worker event', `40${WORKER_NAMESPACE},${hello}`, (i: number) => `42${WORKER_NAMESPACE},["hello",{"n":${i}}]`],
      ['main namespace', '40', (i: number) => `42["status",{"n":${i}}]`],
    ] as const) {
      const r = await flood(coord.url, (i) => (i === 0 ? join : frame(i)), 5000);
      expect(r.closedAfterMs, what).not.toBeNull();
      expect(r.closedAfterMs!, what).toBeLessThan(5000);
    }
    expect((await fetch(`${coord.url}/healthz`)).status).toBe(200);
  }, 30_000);

  test('an honest worker and an admin page are never cut off by them', async () => {
    const coord = await startCoordinator({ defaultRun: trainingRun, adminToken: ADMIN_TOKEN });
    open.coords.push(coord);
    const worker = startCpuWorker(coord.url);
    open.workers.push(worker);
    await waitFor(() => worker.stats.tasksDone >= 20, 30_000, 'the worker to train');
    const admin = openRaw(coord.url);
    open.raw.push(admin);
    await admin.opened;
    admin.packet(`40/admin,${JSON.stringify({ token: ADMIN_TOKEN })}`);
    expect(await until(() => admin.received.some((r) => r.startsWith('40/admin,')), 5000)).toBe(true);
    const done = worker.stats.tasksDone;
    await waitFor(() => worker.stats.tasksDone >= done + 50, 30_000, 'the worker to train on');
    expect(admin.isOpen()).toBe(true);
    expect(worker.stats.state).toBe('training');
  }, 60_000);
});

describe('fuzzing', () => {
  test('2,000 random and malformed frames and 300 request bodies: no 5xx, /healthz answers, the run trains on, no handler throws', async () => {
    const errors: unknown[] = [];
    const coord = await startCoordinator({
      defaultRun: trainingRun,
      adminToken: ADMIN_TOKEN,
      logger: { level: 'error', stream: { write: (line: string) => errors.push(JSON.parse(line)) } },
    });
    open.coords.push(coord);
    const runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
    const worker = startCpuWorker(coord.url);
    open.workers.push(worker);
    await waitFor(() => worker.stats.tasksDone >= 3, 30_000, 'the worker to train');
    const before = worker.stats.tasksDone;

    // What the fuzz found first, sent on purpose: a chunk whose piece is not binary, and a run
    // spec nested deeper than JSON.stringify can write.
    const raw = openRaw(coord.url);
    open.raw.push(raw);
    await raw.opened;
    raw.packet(`40${WORKER_NAMESPACE},${hello}`);
    await until(() => raw.received.some((r) => r.startsWith(`40${WORKER_NAMESPACE},`)), 5000);
    raw.packet(`42${WORKER_NAMESPACE},["chunk",{"stream":"s","index":0,"count":2,"total":128},null]`);
    const deep = await fetch(`${coord.url}/api/specs/preview`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` }, body: '['.repeat(5000) + ']'.repeat(5000) });
    expect(deep.status).toBe(400);
    raw.ws.terminate();

    const frames = await fuzzFrames({ url: coord.url, runId, frames: 2000, seed: 42, connections: 2 });
    expect(frames.cases).toBe(2000);
    expect((await fetch(`${coord.url}/healthz`)).status).toBe(200);
    const bodies = await fuzzBodies({ url: coord.url, runId, bodies: 300, seed: 42, adminToken: ADMIN_TOKEN });
    expect(bodies.serverErrors).toEqual([]);
    expect(bodies.requests).toBe(300);

    expect((await fetch(`${coord.url}/healthz`)).status).toBe(200);
    await waitFor(() => worker.stats.tasksDone > before + 10, 30_000, 'the worker to train on');
    expect(errors).toEqual([]);
  }, 120_000);
});
