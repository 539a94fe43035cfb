// The admin credential as a coordinator and an attacker would meet it: every admin route and the
// admin namespace refuse without the token or with a wrong one, accept the Bearer token and the
// session cookie, a generated token is reported once and kept only as a hash, and a contributor's
// socket never hears admin events. Runs are created and steered through REST (JSON and YAML).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type AppOptions } from '../server/app.ts';
import { ADMIN_COOKIE, TOKEN_HASH_SETTING } from '../server/auth.ts';
import { ADMIN_NAMESPACE } from '../server/routes/admin.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { PROTOCOL_VERSION, WORKER_NAMESPACE } from '../shared/protocol.ts';
import { sharedDataDir, startCpuWorker, waitFor } from './helpers/coordinator.ts';

const TOKEN = 'test-admin-token-0123456789abcdef';
/** A small, quick run: one hidden layer of 16, rounds of 32 examples. */
const SMALL_RUN = { name: 'small', model: { layers: [784, 16, 10] }, batchPerTask: 32, sync: { roundDeadlineMs: 3000, minWorkers: 1 }, evalEvery: 5, checkpointEvery: 100_000 };

interface Coord {
  app: FastifyInstance;
  url: string;
  close: () => Promise<void>;
}

/** buildApp with an in-memory store unless given one; listening on port 0 unless told not to. */
async function start(opts: Partial<AppOptions> & { listen?: boolean } = {}): Promise<Coord> {
  const app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), defaultRun: SMALL_RUN, ...opts });
  let url = '';
  if (opts.listen !== false) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  } else {
    await app.ready();
  }
  return { app, url, close: () => app.close() };
}

const bearer = (token = TOKEN) => ({ authorization: `Bearer ${token}` });
let nextAddress = 1;
/** A fresh client address, so failed attempts of one test never rate-limit another. */
const freshAddress = () => `10.0.${Math.floor(nextAddress / 250)}.${(nextAddress++ % 250) + 1}`;

async function login(app: FastifyInstance, token = TOKEN): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/admin/login', payload: { token }, remoteAddress: freshAddress() });
  expect(res.statusCode).toBe(200);
  const cookie = String(res.headers['set-cookie']);
  return cookie.split(';')[0];
}

const onceConnected = (s: Socket) =>
  new Promise<{ ok: true } | { ok: false; err: Error & { data?: { code: string; message: string } } }>((resolve) => {
    s.once('connect', () => resolve({ ok: true }));
    s.once('connect_error', (err) => resolve({ ok: false, err }));
  });

describe('admin REST authentication', () => {
  let coord: Coord;
  let runId: string;
  beforeAll(async () => {
    coord = await start({ adminToken: TOKEN, listen: false });
    runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
  });
  afterAll(() => coord.close());

  const routes = (id: string): [string, string, unknown?][] => [
    ['POST', '/api/runs', { name: 'x' }],
    ['POST', `/api/runs/${id}/pause`],
    ['POST', `/api/runs/${id}/resume`],
    ['POST', `/api/runs/${id}/start`],
    ['POST', `/api/runs/${id}/stop`],
    ['DELETE', `/api/runs/${id}`],
    ['GET', `/api/runs/${id}/workers`],
    ['GET', `/api/runs/${id}/events`],
    ['GET', `/api/runs/${id}/checkpoint`],
  ];

  test('every admin route refuses a request without credentials, with a wrong token, a wrong cookie or a malformed header', async () => {
    const attempts: [string, Record<string, string>][] = [
      ['none', {}],
      ['wrong Bearer', bearer('not-the-token')],
      ['empty Bearer', { authorization: 'Bearer ' }],
      ['Basic', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
      ['token as cookie', { cookie: `${ADMIN_COOKIE}=${TOKEN}` }],
      ['forged session', { cookie: `${ADMIN_COOKIE}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` }],
    ];
    for (const [method, url, payload] of routes(runId)) {
      for (const [what, headers] of attempts) {
        const res = await coord.app.inject({ method: method as 'GET', url, headers, payload: payload as object, remoteAddress: freshAddress() });
        expect(res.statusCode, `${method} ${url} with ${what}`).toBe(401);
        expect(res.json().error).toBe('unauthorized');
        expect(res.json().message).toMatch(/^admin login required: /);
      }
    }
    // Nothing happened to the run.
    expect(coord.app.crowdtrain.scheduler.runs.get(runId)?.state).toBe('running');
    expect(coord.app.crowdtrain.scheduler.runs.size).toBe(1);
  });

  test('the Bearer token and the session cookie are both accepted', async () => {
    const a = await coord.app.inject({ url: `/api/runs/${runId}/events`, headers: bearer() });
    expect(a.statusCode).toBe(200);
    expect(a.json().events.some((e: { kind: string }) => e.kind === 'created')).toBe(true);
    const cookie = await login(coord.app);
    const b = await coord.app.inject({ url: `/api/runs/${runId}/workers`, headers: { cookie } });
    expect(b.statusCode).toBe(200);
    expect(b.json()).toEqual({ workers: [] });
  });

  test('login sets an HttpOnly, SameSite=Strict session cookie; logout ends the session', async () => {
    const res = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    const setCookie = String(res.headers['set-cookie']);
    // The session id (256 random bits), signed: `<id>.<HMAC-SHA256 in base64>`.
    expect(setCookie).toMatch(new RegExp(`^${ADMIN_COOKIE}=[A-Za-z0-9_-]{40,}\\.[A-Za-z0-9+/]{43};`));
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).not.toMatch(/Secure/); // plain http here; https requests get Secure
    expect(setCookie).not.toContain(TOKEN);
    const cookie = setCookie.split(';')[0];

    expect((await coord.app.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: true });
    expect((await coord.app.inject({ url: '/api/admin/session' })).json()).toEqual({ admin: false });

    const out = await coord.app.inject({ method: 'POST', url: '/api/admin/logout', headers: { cookie } });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    expect((await coord.app.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: false });
    expect((await coord.app.inject({ url: `/api/runs/${runId}/events`, headers: { cookie } })).statusCode).toBe(401);
  });

  test('a wrong token at login is refused, and an address that keeps guessing is slowed down', async () => {
    const remoteAddress = freshAddress();
    const wrong = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: 'guess' }, remoteAddress });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toBe('bad_token');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const missing = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: {}, remoteAddress });
    expect(missing.statusCode).toBe(401);
    for (let i = 0; i < 8; i++) await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: `guess${i}` }, remoteAddress });
    // Ten failures in a minute: even the right token waits now, from this address only.
    const limited = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN }, remoteAddress });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error).toBe('too_many_attempts');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const bearerLimited = await coord.app.inject({ url: `/api/runs/${runId}/events`, headers: bearer('guess'), remoteAddress });
    expect(bearerLimited.statusCode).toBe(429);
    expect((await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN }, remoteAddress: freshAddress() })).statusCode).toBe(200);
  });
});

describe('the admin token', () => {
  test('a generated token is reported once, stored hashed, and still valid after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-auth-'));
    const db = join(dir, 'crowdtrain.db');
    const reported: string[] = [];
    const onAdminTokenCreated = (t: string) => reported.push(t);

    const first = await start({ store: new SqliteStore(db), onAdminTokenCreated, listen: false });
    expect(reported).toHaveLength(1);
    const token = reported[0];
    expect(token).toMatch(/^[A-Za-z0-9_-]{22,}$/); // url-safe, at least 128 bits
    const stored = first.app.crowdtrain.store.getSetting(TOKEN_HASH_SETTING)!;
    expect(stored).toMatch(/^scrypt\$/);
    expect(stored).not.toContain(token);
    expect((await first.app.inject({ url: '/api/runs/x/events', headers: bearer(token) })).statusCode).toBe(404); // authenticated; no such run
    await first.close();
    // Neither the token nor anything that reveals it is in the database file.
    expect(readFileSync(db).includes(Buffer.from(token))).toBe(false);

    const second = await start({ store: new SqliteStore(db), onAdminTokenCreated, listen: false });
    expect(reported).toHaveLength(1);
    expect(second.app.crowdtrain.store.getSetting(TOKEN_HASH_SETTING)).toBe(stored);
    await login(second.app, token);
    await second.close();

    // CROWDTRAIN_ADMIN_TOKEN replaces the stored hash: the generated token stops working.
    const third = await start({ store: new SqliteStore(db), adminToken: TOKEN, onAdminTokenCreated, listen: false });
    expect(reported).toHaveLength(1);
    expect((await third.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token }, remoteAddress: freshAddress() })).statusCode).toBe(401);
    await login(third.app, TOKEN);
    await third.close();
  });
});

describe('runs through REST', () => {
  let coord: Coord;
  beforeAll(async () => {
    coord = await start({ adminToken: TOKEN, defaultRun: false, listen: false });
  });
  afterAll(() => coord.close());

  const post = (url: string, payload?: string | object, headers: Record<string, string> = {}) => coord.app.inject({ method: 'POST', url, payload, headers: { ...bearer(), ...headers } });

  test('create from JSON and from YAML, then pause, resume, stop, start and delete', async () => {
    const a = await post('/api/runs', { ...SMALL_RUN, name: 'from-json' });
    expect(a.statusCode).toBe(201);
    const runA = a.json().run;
    expect(runA).toMatchObject({ name: 'from-json', state: 'running', version: 0 });
    expect(a.json().url).toMatch(new RegExp(`^http://[^/]+/admin#run=${runA.id}$`));

    const yaml = 'name: from-yaml\nmodel:\n  layers: [784, 8, 10]\noptimizer: { kind: sgd, lr: 0.1 }\n';
    for (const type of ['application/yaml', 'text/yaml', 'application/x-yaml', 'text/plain']) {
      const b = await post('/api/runs', yaml, { 'content-type': type });
      expect(b.statusCode, type).toBe(201);
      expect(b.json().run.name).toBe('from-yaml');
      expect(b.json().run.spec.optimizer).toMatchObject({ kind: 'sgd', lr: 0.1 });
      expect(b.json().run.spec.model.layers).toEqual([784, 8, 10]);
    }
    const json = await post('/api/runs', JSON.stringify({ name: 'json-as-text' }), { 'content-type': 'text/plain' });
    expect(json.statusCode).toBe(201);

    const id = runA.id;
    const steps: [string, number, string][] = [
      ['pause', 200, 'paused'],
      ['pause', 409, 'paused'],
      ['resume', 200, 'running'],
      ['stop', 200, 'stopped'],
      ['stop', 409, 'stopped'],
      ['pause', 409, 'stopped'],
      ['start', 200, 'running'],
    ];
    for (const [verb, status, state] of steps) {
      const r = await post(`/api/runs/${id}/${verb}`);
      expect(r.statusCode, `${verb}`).toBe(status);
      if (status === 200) expect(r.json().run.state).toBe(state);
      else expect(r.json()).toEqual({ error: 'bad_transition', message: `run ${id} is ${state}; it cannot be ${verb === 'pause' ? 'paused' : 'stopped'}` });
      expect(coord.app.crowdtrain.scheduler.runs.get(id)?.state).toBe(state);
    }
    const events = (await coord.app.inject({ url: `/api/runs/${id}/events?limit=50`, headers: bearer() })).json().events;
    expect(events.filter((e: { kind: string }) => e.kind === 'state')).toHaveLength(4);

    const del = await coord.app.inject({ method: 'DELETE', url: `/api/runs/${id}`, headers: bearer() });
    expect(del.statusCode).toBe(204);
    expect(coord.app.crowdtrain.scheduler.runs.has(id)).toBe(false);
    expect((await coord.app.inject({ url: `/api/runs/${id}` })).statusCode).toBe(404);
    expect((await coord.app.inject({ method: 'DELETE', url: `/api/runs/${id}`, headers: bearer() })).statusCode).toBe(404);
    const unknown = await post('/api/runs/nope/pause');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'unknown_run', message: 'no run with id "nope"' });
  });

  test('a bad spec is refused with 400, naming the field and its allowed range', async () => {
    const lr = await post('/api/runs', { optimizer: { kind: 'adam', lr: 50 } });
    expect(lr.statusCode).toBe(400);
    const body = lr.json();
    expect(body.error).toBe('invalid_spec');
    expect(body.issues).toEqual([expect.objectContaining({ path: 'optimizer.lr' })]);
    expect(body.issues[0].message).toMatch(/10/);
    expect(body.message).toMatch(/optimizer\.lr/);

    const yamlLr = await post('/api/runs', 'optimizer:\n  lr: 50\n', { 'content-type': 'application/yaml' });
    expect(yamlLr.statusCode).toBe(400);
    expect(yamlLr.json().issues[0].path).toBe('optimizer.lr');

    const unknownField = await post('/api/runs', { name: 'x', learningRate: 3 });
    expect(unknownField.statusCode).toBe(400);
    expect(unknownField.json().message).toMatch(/learningRate/);

    const badYaml = await post('/api/runs', 'name: [unclosed\n', { 'content-type': 'application/yaml' });
    expect(badYaml.statusCode).toBe(400);
    expect(badYaml.json().error).toBe('invalid_spec');

    const badJson = await post('/api/runs', '{"name": ', { 'content-type': 'application/json' });
    expect(badJson.statusCode).toBe(400);

    const empty = await post('/api/runs', '', { 'content-type': 'application/yaml' });
    expect(empty.statusCode).toBe(400);

    const wrongType = await post('/api/runs', '<spec/>', { 'content-type': 'application/xml' });
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().message).toMatch(/application\/yaml/);

    expect((await coord.app.inject({ url: '/api/runs' })).json().runs.every((r: { name: string }) => r.name !== 'x')).toBe(true);
  });
});

describe('while a run trains', () => {
  let coord: Coord;
  let runId: string;
  beforeAll(async () => {
    coord = await start({ adminToken: TOKEN });
    runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
  });
  afterAll(() => coord.close());

  const adminSocket = (opts: { token?: string; cookie?: string } = {}) =>
    io(`${coord.url}${ADMIN_NAMESPACE}`, {
      auth: opts.token ? { token: opts.token } : {},
      extraHeaders: opts.cookie ? { cookie: opts.cookie } : {},
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });

  test('the admin namespace refuses a handshake without credentials or with a wrong token', async () => {
    const sockets = [adminSocket(), adminSocket({ token: 'wrong' }), adminSocket({ cookie: `${ADMIN_COOKIE}=forged` })];
    const results = sockets.map(onceConnected);
    for (const [i, s] of sockets.entries()) {
      const r = await results[i];
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.err.data?.code).toBe('unauthorized');
        expect(r.err.data?.message).toMatch(/^admin login required/);
      }
      s.close();
    }
  });

  test('admins hear runs, metric points, worker tables and events; a contributor socket hears none of them', async () => {
    const cookie = await login(coord.app);
    const byToken = adminSocket({ token: TOKEN });
    const byCookie = adminSocket({ cookie });
    const connected = [onceConnected(byToken), onceConnected(byCookie)];
    const heard = { runs: [] as unknown[], metric: [] as { runId: string; point: { version: number } }[], workers: [] as { runId: string; workers: { backend: string; connected: boolean }[] }[], event: [] as { kind: string }[] };
    for (const name of Object.keys(heard) as (keyof typeof heard)[]) byToken.on(name, (x: unknown) => void heard[name].push(x as never));
    const cookieRuns: unknown[] = [];
    byCookie.on('runs', (r: unknown) => cookieRuns.push(r));
    expect(await Promise.all(connected)).toEqual([{ ok: true }, { ok: true }]);
    await waitFor(() => heard.runs.length > 0 && cookieRuns.length > 0, 5000, 'the runs list on connect');
    expect((heard.runs[0] as { id: string }[]).map((r) => r.id)).toEqual([runId]);

    // A contributor that connects on /worker and only listens.
    const contributorHeard: string[] = [];
    const contributor = io(`${coord.url}${WORKER_NAMESPACE}`, { auth: { protocol: PROTOCOL_VERSION, backend: 'cpu' }, transports: ['websocket'], forceNew: true });
    contributor.onAny((name: string) => contributorHeard.push(name));
    const worker = startCpuWorker(coord.url, { hello: { nickname: 'laptop-7' } });
    try {
      await waitFor(() => heard.metric.length >= 3 && heard.workers.length >= 2 && heard.event.some((e) => e.kind === 'join'), 30_000, 'metric points, worker tables and a join event');
      const versions = heard.metric.map((m) => m.point.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(new Set(versions).size).toBe(versions.length);
      expect(heard.metric.every((m) => m.runId === runId)).toBe(true);
      const table = heard.workers.at(-1)!;
      expect(table.runId).toBe(runId);
      expect(table.workers.some((w) => w.backend === 'cpu' && w.connected)).toBe(true);

      const rest = (await coord.app.inject({ url: `/api/runs/${runId}/workers`, headers: bearer() })).json().workers;
      const me = rest.find((w: { nickname: string | null }) => w.nickname === 'laptop-7');
      expect(me).toMatchObject({ backend: 'cpu', connected: true });
      expect(me.tasksDone).toBeGreaterThan(0);
      expect(Date.parse(me.lastSeen)).toBeGreaterThan(Date.now() - 60_000);

      // The admin feed sends twice more, then three more rounds' parameters reach the contributor
      // on its own connection, after those admin messages were sent: it hears worker traffic only.
      const tablesBefore = heard.workers.length;
      const metricsBefore = heard.metric.length;
      await waitFor(() => heard.workers.length >= tablesBefore + 2 && heard.metric.length > metricsBefore, 30_000, 'two more admin feed updates');
      const paramsHeard = () => contributorHeard.filter((name) => name === 'params').length;
      const paramsBefore = paramsHeard();
      await waitFor(() => paramsHeard() >= paramsBefore + 3, 30_000, 'three more rounds of parameters on the contributor socket');
      expect(contributorHeard).toContain('welcome');
      for (const admin of ['runs', 'metric', 'workers', 'event']) expect(contributorHeard).not.toContain(admin);

      // Pausing through REST reaches admins as a runs update and a state event.
      const runsBefore = heard.runs.length;
      expect((await coord.app.inject({ method: 'POST', url: `/api/runs/${runId}/pause`, headers: bearer() })).statusCode).toBe(200);
      await waitFor(() => heard.runs.length > runsBefore && heard.event.some((e) => e.kind === 'state'), 5000, 'runs and event after pause');
      expect((heard.runs.at(-1) as { state: string }[])[0].state).toBe('paused');
    } finally {
      worker.stop();
      contributor.close();
      byToken.close();
      byCookie.close();
    }
  });

  test('the latest checkpoint downloads as a safetensors attachment', async () => {
    const run = coord.app.crowdtrain.scheduler.runs.get(runId)!;
    // The run was paused above after training: pausing writes a checkpoint.
    expect(run.version).toBeGreaterThan(0);
    const res = await coord.app.inject({ url: `/api/runs/${runId}/checkpoint`, headers: bearer() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-disposition']).toBe(`attachment; filename="small-v${run.version}.safetensors"`);
    const bytes = res.rawPayload;
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    expect(header['0.weight'].shape).toEqual([16, 784]);
    expect(Number(res.headers['content-length'])).toBe(bytes.length);

    const other = await coord.app.inject({ method: 'POST', url: '/api/runs', payload: { name: 'fresh' }, headers: bearer() });
    const none = await coord.app.inject({ url: `/api/runs/${other.json().run.id}/checkpoint`, headers: bearer() });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toMatchObject({ error: 'no_checkpoint' });
    expect(none.json().message).toMatch(/no checkpoint yet/);
  });
});
