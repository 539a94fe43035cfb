// `crowdtrain submit`: a bad spec never leaves the machine, a good one is POSTed as YAML with
// the bearer token and the run's URL is printed; server refusals are told apart.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { EXIT, main, type CliOutput } from '../server/submit-cli.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { sharedDataDir } from './helpers/coordinator.ts';

const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-submit-'));
const example = join(import.meta.dirname, '..', 'examples', 'classroom.yaml');

function specFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs the CLI in-process, capturing what it prints. */
async function run(argv: string[], env: Record<string, string | undefined> = {}, fetchImpl?: typeof fetch) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliOutput = { out: (t) => void out.push(t), err: (t) => void err.push(t) };
  const code = await main(argv, env, fetchImpl ?? fetch, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

interface Recorded {
  method?: string;
  url?: string;
  contentType?: string;
  authorization?: string;
  body: string;
}

/** A stand-in coordinator on 127.0.0.1:0 that records each request and answers with `reply`. */
function stubServer(reply: (req: Recorded) => { status: number; body: unknown }) {
  const requests: Recorded[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Recorded = { method: req.method, url: req.url, contentType: req.headers['content-type'], authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(rec);
      const { status, body } = reply(rec);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  return {
    requests,
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    start: () => new Promise<void>((r) => server.listen(0, '127.0.0.1', r)),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('crowdtrain submit, locally', () => {
  test('an invalid spec exits 2 naming each bad field, without contacting the server', async () => {
    let called = false;
    const spy = (async () => {
      called = true;
      throw new Error('must not be called');
    }) as typeof fetch;
    const bad = specFile('bad.yaml', 'name: x\noptimizer:\n  lr: 50\nbatchPerTask: 0\n');
    const r = await run(['submit', bad, '--server', 'http://127.0.0.1:1', '--token', 't'], {}, spy);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toContain(`${bad} is not a valid run spec`);
    expect(r.err).toContain('optimizer.lr: must be a number greater than 0 and at most 10 (got 50)');
    expect(r.err).toContain('batchPerTask: must be an integer from 1 to 4096 (got 0)');
    expect(called).toBe(false);
  });

  test('a YAML syntax error exits 2 with its line', async () => {
    const r = await run(['validate', specFile('syntax.yaml', 'model:\n  layers: [784, 10\nname: x\n')]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toMatch(/\(yaml\): line 3, column 1: /);
  });

  test('validate says a good spec is valid', async () => {
    const r = await run(['validate', example]);
    expect(r).toMatchObject({ code: EXIT.ok, out: `${example}: a valid run spec` });
  });

  test('usage errors exit 2: no token, no file, a missing file, an unknown command or option, a bad URL', async () => {
    const noToken = await run(['submit', example]);
    expect(noToken.code).toBe(EXIT.usage);
    expect(noToken.err).toMatch(/no admin token: pass --token, or set CROWDTRAIN_ADMIN_TOKEN/);
    expect((await run(['submit', '--token', 't'])).err).toMatch(/submit takes one spec file, got 0/);
    expect((await run(['submit', join(dir, 'nope.yaml'), '--token', 't'])).err).toMatch(/cannot read .*nope\.yaml/);
    expect((await run(['train', example])).err).toMatch(/unknown command "train"/);
    expect((await run(['submit', example, '--tokn', 't'])).err).toMatch(/Unknown option '--tokn'/);
    expect((await run(['submit', example, '--token', 't', '--server', 'ftp://x'])).err).toMatch(/--server must be an http:\/\/ or https:\/\/ URL/);
    for (const argv of [['submit', example], [], ['train']]) expect((await run(argv)).code).toBe(EXIT.usage);
  });

  test('--help prints the usage and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toMatch(/crowdtrain submit <spec\.yaml\|spec\.json> \[--server URL\] \[--token TOKEN\]/);
  });

  test('an unreachable server exits 1 and says where it tried', async () => {
    const s = stubServer(() => ({ status: 500, body: {} }));
    await s.start();
    const url = s.url();
    await s.stop(); // nothing listens there now
    const r = await run(['submit', example, '--server', url, '--token', 't']);
    expect(r.code).toBe(EXIT.server);
    expect(r.err).toMatch(new RegExp(`could not reach the coordinator at ${url}: ECONNREFUSED`));
  });
});

describe('crowdtrain submit, against a stand-in server', () => {
  const s = stubServer((req) => {
    if (req.authorization !== 'Bearer s3cret') return { status: 401, body: { error: 'unauthorized', message: 'admin token required' } };
    if (req.body.includes('dataset: cifar')) return { status: 400, body: { error: 'invalid_spec', message: 'invalid run spec', issues: [{ path: 'dataset', message: 'no dataset named "cifar"; available: mnist' }] } };
    return { status: 201, body: { run: { id: 'r-42', name: 'classroom', state: 'running' }, url: '/admin#run=r-42' } };
  });
  beforeAll(s.start);
  afterAll(s.stop);

  test('POSTs the file as application/yaml with the bearer token and prints the run URL', async () => {
    const r = await run(['submit', example, '--server', `${s.url()}/`], { CROWDTRAIN_ADMIN_TOKEN: 's3cret' });
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toBe(`${s.url()}/admin#run=r-42`);
    expect(r.err).toMatch(/created run "classroom" \(r-42\)/);
    const req = s.requests.at(-1)!;
    expect(req).toMatchObject({ method: 'POST', url: '/api/runs', contentType: 'application/yaml', authorization: 'Bearer s3cret' });
    expect(req.body).toBe(readFileSync(example, 'utf8'));
  });

  test('--token wins over the environment; CROWDTRAIN_SERVER is the default server', async () => {
    const r = await run(['submit', example, '-t', 's3cret'], { CROWDTRAIN_ADMIN_TOKEN: 'wrong', CROWDTRAIN_SERVER: s.url() });
    expect(r.code).toBe(EXIT.ok);
    expect(s.requests.at(-1)!.authorization).toBe('Bearer s3cret');
  });

  test('a refused token exits 1 with a message saying so', async () => {
    const r = await run(['submit', example, '--server', s.url(), '--token', 'wrong']);
    expect(r.code).toBe(EXIT.server);
    expect(r.err).toMatch(/the server refused the admin token \(HTTP 401\)/);
  });

  test("the server's field errors are printed one per line, exit 1", async () => {
    const file = specFile('cifar.yaml', 'name: c\ndataset: cifar\n');
    const r = await run(['submit', file, '--server', s.url(), '--token', 's3cret']);
    expect(r.code).toBe(EXIT.server);
    expect(r.err).toMatch(/the server refused the run \(HTTP 400 invalid_spec\):\n {2}dataset: no dataset named "cifar"; available: mnist/);
  });
});

describe('crowdtrain submit, against a real coordinator', () => {
  const TOKEN = 'submit-cli-test-token-0123456789';
  let app: FastifyInstance;
  let url = '';
  beforeAll(async () => {
    app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), defaultRun: false, adminToken: TOKEN });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(() => app?.close());

  test.each([
    ['a JSON spec', () => specFile('real.json', JSON.stringify({ name: 'from-cli-json', model: { layers: [784, 8, 10] }, sync: { minWorkers: 5 } }))],
    ['the classroom example (YAML)', () => example],
  ])('creates a run from %s and prints a URL that names it', async (_what, file) => {
    const path = file();
    const r = await run(['submit', path, '--server', url], { CROWDTRAIN_ADMIN_TOKEN: TOKEN });
    expect(r.err).not.toMatch(/refused/);
    expect(r.code).toBe(EXIT.ok);
    const id = /#run=(.+)$/.exec(r.out)?.[1];
    expect(r.out.startsWith(`${url}/admin#run=`)).toBe(true);
    const res = await app.inject(`/api/runs/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().name).toBe(parseRunSpecText(readFileSync(path, 'utf8')).name);
  });

  test('a wrong token is refused, exit 1', async () => {
    const r = await run(['submit', example, '--server', url, '--token', 'not-the-token']);
    expect(r.code).toBe(EXIT.server);
    expect(r.err).toMatch(/the server refused the admin token \(HTTP 401\)/);
  });

  test('a spec the server refuses (an unknown dataset) is printed field by field, exit 1', async () => {
    const r = await run(['submit', specFile('unknown-ds.yaml', '{"name": "x", "dataset": "cifar"}'), '--server', url, '--token', TOKEN]);
    expect(r.code).toBe(EXIT.server);
    expect(r.err).toMatch(/HTTP 400 invalid_spec\):\n {2}dataset: no dataset named "cifar"/);
  });
});
