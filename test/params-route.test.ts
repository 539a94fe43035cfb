// GET /api/runs/:runId/params/:version/:sha256: a snapshot's exact bytes with headers that let any
// cache keep it for good, 304 for a copy already held, and a clear refusal for an unknown run, a
// stale or unknown version, a wrong hash or a malformed URL; the bytes served are counted per run.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, expect, test } from 'vitest';
import { ParamChannel } from '../server/params/param-channel.ts';
import { registerParamRoutes } from '../server/routes/params.ts';
import { createRng } from '../shared/rng.ts';

const N = 1000;
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function setup() {
  const channel = new ParamChannel('r1', N, { kind: 'int8', block: 256 }, { keepSnapshots: 2 });
  const rng = createRng(21);
  const params = Float32Array.from({ length: N }, () => rng.normal());
  let version = 0;
  const next = () => {
    for (let i = 0; i < N; i++) params[i] += 0.01 * rng.normal();
    channel.publish(params, ++version);
    return channel.snapshot().meta.snapshot!;
  };
  channel.publish(params, 0);
  const served: [string, number][] = [];
  app = Fastify();
  registerParamRoutes(app, (id) => (id === 'r1' ? channel : undefined), { onServed: (runId, bytes) => served.push([runId, bytes]) });
  return { channel, served, next, first: channel.snapshot().meta.snapshot! };
}

test('the snapshot\'s bytes, immutable and content-addressed, and counted', async () => {
  const { channel, served, first } = setup();
  const res = await app!.inject({ method: 'GET', url: first.url });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('application/octet-stream');
  expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  expect(res.headers.etag).toBe(`"${first.sha256}"`);
  expect(res.headers['content-length']).toBe(String(4 * N));
  const values = new Float32Array(new Uint8Array(res.rawPayload).buffer);
  expect(new Uint32Array(values.buffer)).toEqual(new Uint32Array(channel.view.params.buffer));
  expect(served).toEqual([['r1', 4 * N]]);
});

test('304 when the copy held matches, the body sent otherwise', async () => {
  const { served, first } = setup();
  for (const tag of [`"${first.sha256}"`, `W/"${first.sha256}"`, `"abc", "${first.sha256}"`, '*']) {
    const res = await app!.inject({ method: 'GET', url: first.url, headers: { 'if-none-match': tag } });
    expect(res.statusCode, tag).toBe(304);
    expect(res.rawPayload.byteLength).toBe(0);
    expect(res.headers.etag).toBe(`"${first.sha256}"`);
  }
  expect(served).toEqual([]);
  const other = await app!.inject({ method: 'GET', url: first.url, headers: { 'if-none-match': `"${'0'.repeat(64)}"` } });
  expect(other.statusCode).toBe(200);
  expect(other.rawPayload.byteLength).toBe(4 * N);
});

test('404 with the reason for an unknown run, a stale or unknown version and a wrong hash', async () => {
  const { first, next } = setup();
  next();
  const latest = next(); // versions 1 and 2 kept; 0 is stale
  const refused = async (url: string, error: string, message: string | RegExp) => {
    const res = await app!.inject({ method: 'GET', url });
    expect(res.statusCode, url).toBe(404);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(body.error).toBe(error);
    expect(body.message).toMatch(message);
  };
  await refused(first.url, 'stale_version', 'run r1 has no snapshot of version 0: it serves snapshots of versions 1, 2 (the latest parameters are version 2); ask for the current snapshot');
  await refused(`/api/runs/r1/params/7/${latest.sha256}`, 'stale_version', /no snapshot of version 7/);
  await refused(`/api/runs/r1/params/2/${first.sha256}`, 'unknown_hash', `run r1's snapshot of version 2 does not have SHA-256 ${first.sha256}`);
  await refused(`/api/runs/nope/params/2/${latest.sha256}`, 'unknown_run', 'no run with id "nope"');
  // The right URL still serves.
  expect((await app!.inject({ method: 'GET', url: latest.url })).statusCode).toBe(200);
});

test('400 for a malformed version or hash', async () => {
  const { first } = setup();
  const hash = first.sha256;
  for (const [url, error] of [
    [`/api/runs/r1/params/-1/${hash}`, 'bad_version'],
    [`/api/runs/r1/params/1.5/${hash}`, 'bad_version'],
    [`/api/runs/r1/params/01/${hash}`, 'bad_version'],
    [`/api/runs/r1/params/x/${hash}`, 'bad_version'],
    ['/api/runs/r1/params/0/abc', 'bad_hash'],
    [`/api/runs/r1/params/0/${hash.toUpperCase()}`, 'bad_hash'],
    [`/api/runs/r1/params/0/${hash}0`, 'bad_hash'],
  ]) {
    const res = await app!.inject({ method: 'GET', url });
    expect(res.statusCode, url).toBe(400);
    expect(res.json().error, url).toBe(error);
    expect(res.json().message, url).toMatch(error === 'bad_version' ? /non-negative integer/ : /64 lower-case hex digits/);
  }
});
