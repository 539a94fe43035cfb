// The coordinator's pages and REST as an attacker and a browser meet them: security headers on
// every page; each page (contributor with its drawing pad, train with its chart, admin logged in,
// the board with its QR code and charts) working in Chromium under the Content-Security-Policy
// with no violation, and under Vite's dev-server variant of the policy; admin sessions that
// survive a restart and expire; cookie-authenticated mutations from another origin refused while
// Bearer scripts go on; login and upload floods answered 429; oversized bodies answered 413 while
// the coordinator keeps serving.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { io } from 'socket.io-client';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp, type AppOptions } from '../server/app.ts';
import { ADMIN_COOKIE } from '../server/auth.ts';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { crowdtrainDevData } from '../server/dev-plugin.ts';
import { ManualClock } from '../server/clock.ts';
import { ADMIN_NAMESPACE } from '../server/routes/admin.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { sharedDataDir, startCoordinator, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
const TOKEN = 'web-hardening-test-token-0123456789';
/** A small run on the 10,000-digit MNIST: quick to set up, a 28x28 classifier for the drawing pad. */
const SMALL_RUN = { name: 'hardening', dataset: 'mnist-10k', model: { layers: [784, 16, 10] }, batchPerTask: 32, checkpointEvery: 100_000 };

let nextAddress = 1;
/** A fresh client address, so one test's attempts never rate-limit another's. */
const freshAddress = () => `10.9.${Math.floor(nextAddress / 250)}.${(nextAddress++ % 250) + 1}`;

async function login(app: FastifyInstance, token = TOKEN): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/admin/login', payload: { token }, remoteAddress: freshAddress() });
  expect(res.statusCode).toBe(200);
  return String(res.headers['set-cookie']).split(';')[0];
}

/** The session id inside a signed cookie `name=<id>.<signature>`. */
const sessionIdOf = (cookie: string) => decodeURIComponent(cookie.slice(ADMIN_COOKIE.length + 1)).split('.')[0];

describe('security headers', () => {
  let coord: TestCoordinator;
  let runId: string;
  beforeAll(async () => {
    await buildPagesIfStale(root, pagesDir, () => {});
    coord = await startCoordinator({ pagesDir, defaultRun: SMALL_RUN, adminToken: TOKEN });
    runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
  }, 180_000);
  afterAll(() => coord?.close());

  test('every page carries a strict CSP, frame protection and nosniff; so do JSON answers', async () => {
    const pages = ['/', '/index.html', '/train.html', '/admin', '/admin.html', `/board/${runId}`];
    for (const url of pages) {
      const res = await coord.app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(String(res.headers['content-type']), url).toMatch(/^text\/html/);
      const csp = String(res.headers['content-security-policy']);
      expect(csp, url).toMatch(/(^|;)\s*default-src 'self'/);
      expect(csp, url).toMatch(/(^|;)\s*script-src 'self'(;|$)/); // no inline script, no eval
      expect(csp, url).toMatch(/(^|;)\s*style-src 'self'(;|$)/);
      expect(csp, url).toMatch(/(^|;)\s*frame-ancestors 'none'/);
      expect(csp, url).toMatch(/(^|;)\s*object-src 'none'/);
      expect(csp, url).not.toContain('upgrade-insecure-requests'); // a classroom on plain http keeps working
      expect(res.headers['x-frame-options'], url).toBe('DENY');
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('same-origin');
    }
    const json = await coord.app.inject({ url: '/api/runs' });
    expect(json.headers['x-content-type-options']).toBe('nosniff');
    expect(json.headers['content-security-policy']).toBeDefined();
    const missing = await coord.app.inject({ url: '/no-such-page.html?x=1' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found', message: 'nothing at GET /no-such-page.html' });
    expect(missing.headers['x-frame-options']).toBe('DENY');
  });
});

/** Collects CSP violations and CSP console errors of a page from before its first script runs. */
async function watchCsp(page: Page): Promise<{ violations: () => Promise<string[]>; console: string[] }> {
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) consoleErrors.push(m.text());
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`));
  });
  return { violations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp), console: consoleErrors };
}

describe('the pages under the CSP in Chromium', () => {
  let coord: TestCoordinator;
  let browser: Browser;
  let runId: string;
  beforeAll(async () => {
    await buildPagesIfStale(root, pagesDir, () => {});
    coord = await startCoordinator({ pagesDir, defaultRun: SMALL_RUN, adminToken: TOKEN });
    runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
    browser = await chromium.launch(chromiumLaunchOptions());
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await coord?.close();
  });

  /** Opens `path` in a fresh page, runs `use`, and returns what the CSP refused meanwhile. */
  async function visit(path: string, use: (page: Page) => Promise<void>): Promise<{ violations: string[]; console: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const csp = await watchCsp(page);
    try {
      await page.goto(`${coord.url}${path}`);
      await use(page);
      const violations = await csp.violations();
      expect(pageErrors, path).toEqual([]);
      return { violations, console: csp.console };
    } finally {
      await page.close();
    }
  }

  test('the watcher sees a violation when there is one (an injected inline style)', async () => {
    const seen = await visit('/train.html', async (page) => {
      await page.evaluate(() => {
        const s = document.createElement('style');
        s.textContent = 'body { color: red }';
        document.head.append(s);
      });
      await expect.poll(async () => (await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).length).toBeGreaterThan(0);
    });
    expect(seen.violations.join('\n')).toMatch(/style-src/);
  });

  test('the contributor page: its worker socket, and its drawing pad', async () => {
    // The CPU backend: this is about the page's connections and styles, not SwiftShader's speed.
    const seen = await visit('/?backend=cpu', async (page) => {
      await expect.poll(() => page.locator('#model-line').textContent(), { timeout: 20_000 }).toContain('Model:');
      await page.locator('#contribute').click();
      await expect.poll(() => coord.app.crowdtrain.scheduler.workers.size, { timeout: 30_000 }).toBe(1);
      await expect.poll(() => page.locator('#run-name').textContent(), { timeout: 20_000 }).toContain('hardening');
      await page.locator('#contribute').click();
      await expect.poll(() => coord.app.crowdtrain.scheduler.workers.size, { timeout: 10_000 }).toBe(0);
      const pad = page.locator('#try-model canvas').first();
      await pad.waitFor({ state: 'visible', timeout: 20_000 });
      // Draw a stroke: the pad's styles come from the bundled stylesheet, not an injected <style>.
      const box = (await pad.boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 8 });
      await page.mouse.up();
      expect(await page.locator('.try-model').evaluate((el) => getComputedStyle(el).display)).toBe('flex');
    });
    expect(seen).toEqual({ violations: [], console: [] });
  });

  test('train.html and its chart', async () => {
    const seen = await visit('/train.html', async (page) => {
      await expect.poll(() => page.locator('#train').isEnabled(), { timeout: 60_000 }).toBe(true);
      await page.locator('input[name=hidden]').fill('8');
      await page.locator('input[name=batch]').fill('512');
      await page.locator('input[name=epochs]').fill('1');
      await page.locator('#train').click();
      await page.locator('#chart .uplot').waitFor({ timeout: 30_000 });
      await page.locator('#stop').click();
    });
    expect(seen).toEqual({ violations: [], console: [] });
  });

  test('the admin page, logged in: its socket, its charts, and a cookie-authenticated POST from its own origin', async () => {
    const seen = await visit('/admin', async (page) => {
      await page.locator('#token').fill(TOKEN);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.locator('#console').waitFor({ state: 'visible', timeout: 10_000 });
      await page.locator('#runs tbody tr', { hasText: 'hardening' }).click();
      await page.locator('.uplot').first().waitFor({ timeout: 10_000 });
      // The browser names this page's origin on a POST under the Referrer-Policy: the Origin check lets it through.
      const status = await page.evaluate(async (id) => (await fetch(`/api/runs/${id}/pause`, { method: 'POST' })).status, runId);
      expect(status).toBe(200);
      await expect.poll(() => coord.app.crowdtrain.scheduler.runs.get(runId)!.state).toBe('paused');
      await page.evaluate(async (id) => fetch(`/api/runs/${id}/resume`, { method: 'POST' }), runId);
    });
    expect(seen).toEqual({ violations: [], console: [] });
  });

  test('the board: QR code, charts, drawing pad and its live socket', async () => {
    const seen = await visit(`/board/${runId}`, async (page) => {
      await expect.poll(() => page.locator('#join-qr').getAttribute('src'), { timeout: 20_000 }).toMatch(/^data:image\/png/);
      await expect.poll(() => page.locator('#join-qr').evaluate((img: HTMLImageElement) => img.naturalWidth), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 20_000 }).toBe('live');
      await page.locator('#accuracy-chart .uplot').waitFor({ timeout: 20_000 });
      await page.locator('#try-model canvas').first().waitFor({ state: 'visible', timeout: 20_000 });
    });
    expect(seen).toEqual({ violations: [], console: [] });
  });
});

describe("Vite's dev server", () => {
  let server: ViteDevServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await createServer({ configFile: false, root: resolve(root, 'client/pages'), logLevel: 'silent', plugins: [crowdtrainDevData(sharedDataDir)], server: { host: '127.0.0.1', port: 0, fs: { allow: [root] } } });
    await server.listen();
    browser = await chromium.launch(chromiumLaunchOptions());
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  test('sends the policy on the pages with its own allowances, and the train page loads under it', async () => {
    const url = server.resolvedUrls!.local[0];
    const csp = (await fetch(new URL('train.html', url))).headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self' 'unsafe-inline' 'unsafe-eval'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    // Vite's own modules are not pages: no policy on them.
    expect((await fetch(new URL('@vite/client', url))).headers.get('content-security-policy')).toBeNull();

    const page = await browser.newPage();
    const seen = await watchCsp(page);
    await page.goto(new URL('train.html', url).href);
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 30_000 }).toMatch(/Ready|Could not/);
    expect(await seen.violations()).toEqual([]);
    expect(seen.console).toEqual([]);
    await page.close();
  });
});

describe('admin sessions', () => {
  test('a session survives a coordinator restart on the same store, and the store keeps only its hash', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'crowdtrain-sessions-')), 'crowdtrain.db');
    const opts: Partial<AppOptions> = { dataDir: sharedDataDir, defaultRun: SMALL_RUN, adminToken: TOKEN, evaluation: 'inline' };
    const first = await buildApp({ ...opts, store: new SqliteStore(db) } as AppOptions);
    const cookie = await login(first);
    expect((await first.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: true });
    await first.close();

    const sessionId = sessionIdOf(cookie);
    const raw = new Database(db, { readonly: true });
    const rows = raw.prepare('SELECT * FROM sessions').all() as { id_hash: string }[];
    raw.close();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(sessionId);

    const second = await buildApp({ ...opts, store: new SqliteStore(db) } as AppOptions);
    try {
      expect((await second.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: true });
      const runId = [...second.crowdtrain.scheduler.runs.keys()][0];
      expect((await second.inject({ url: `/api/runs/${runId}/events`, headers: { cookie } })).statusCode).toBe(200);
      // A cookie whose signature is altered is no session at all.
      const forged = cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      expect((await second.inject({ url: '/api/admin/session', headers: { cookie: forged } })).json()).toEqual({ admin: false });
    } finally {
      await second.close();
    }
  });

  test('an expired session is refused and its row swept', async () => {
    const clock = new ManualClock(Date.now());
    const store = new SqliteStore(':memory:');
    const app = await buildApp({ dataDir: sharedDataDir, store, clock, defaultRun: SMALL_RUN, adminToken: TOKEN, evaluation: 'inline' });
    try {
      const cookie = await login(app);
      const runId = [...app.crowdtrain.scheduler.runs.keys()][0];
      expect((await app.inject({ url: `/api/runs/${runId}/events`, headers: { cookie } })).statusCode).toBe(200);
      clock.advance(12 * 60 * 60 * 1000 - 1000);
      expect((await app.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: true });
      clock.advance(2000);
      expect((await app.inject({ url: '/api/admin/session', headers: { cookie } })).json()).toEqual({ admin: false });
      const refused = await app.inject({ url: `/api/runs/${runId}/events`, headers: { cookie } });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error).toBe('unauthorized');
      // An expired session that nobody presents again goes at the next login.
      const stale = await login(app);
      const staleHash = createHash('sha256').update(sessionIdOf(stale)).digest('hex');
      expect(store.getSession(staleHash)).toBeDefined();
      clock.advance(12 * 60 * 60 * 1000 + 1);
      await login(app);
      expect(store.getSession(staleHash)).toBeUndefined();
      expect((await app.inject({ url: '/api/admin/session', headers: { cookie: stale } })).json()).toEqual({ admin: false });
    } finally {
      await app.close();
    }
  });
});

describe('cookie-authenticated mutations check the Origin', () => {
  let coord: TestCoordinator;
  let runId: string;
  beforeAll(async () => {
    coord = await startCoordinator({ defaultRun: SMALL_RUN, adminToken: TOKEN, evaluation: 'inline' });
    runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
  });
  afterAll(() => coord?.close());

  test('a POST with the session cookie from another origin is refused 403; from the own origin, or with Bearer, it goes', async () => {
    const cookie = await login(coord.app);
    const host = new URL(coord.url).host;
    const pause = (headers: Record<string, string>) => fetch(`${coord.url}/api/runs/${runId}/pause`, { method: 'POST', headers });

    const evil = await pause({ cookie, origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    const body = (await evil.json()) as { error: string; message: string };
    expect(body.error).toBe('cross_origin');
    expect(body.message).toContain('https://evil.example');
    expect(coord.app.crowdtrain.scheduler.runs.get(runId)!.state).not.toBe('paused');

    // Another port of the same host is another origin.
    const otherPort = await pause({ cookie, origin: `http://127.0.0.1:${Number(host.split(':')[1]) + 1}` });
    expect(otherPort.status).toBe(403);
    // Neither Origin nor Referer: refused as well.
    expect((await pause({ cookie })).status).toBe(403);
    // A Referer of another site when no Origin is sent.
    expect((await pause({ cookie, referer: 'https://evil.example/page' })).status).toBe(403);
    // Reading with the cookie needs no Origin.
    expect((await fetch(`${coord.url}/api/runs/${runId}/events`, { headers: { cookie } })).status).toBe(200);

    const own = await pause({ cookie, origin: `http://${host}` });
    expect(own.status).toBe(200);
    expect(coord.app.crowdtrain.scheduler.runs.get(runId)!.state).toBe('paused');

    // A script with the Bearer token is not asked for an Origin, even a foreign one.
    const script = await fetch(`${coord.url}/api/runs/${runId}/resume`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' } });
    expect(script.status).toBe(200);
  });

  test('the admin namespace refuses a session cookie sent from another origin', async () => {
    const cookie = await login(coord.app);
    const connect = (origin: string) =>
      new Promise<string>((done) => {
        const s = io(`${coord.url}${ADMIN_NAMESPACE}`, { extraHeaders: { cookie, origin }, transports: ['websocket'], reconnection: false, forceNew: true });
        s.once('connect', () => (s.close(), done('connected')));
        s.once('connect_error', (e: Error & { data?: { code: string } }) => (s.close(), done(e.data?.code ?? e.message)));
      });
    expect(await connect('https://evil.example')).toBe('unauthorized');
    expect(await connect(coord.url)).toBe('connected');
  });
});

describe('request limits', () => {
  let coord: TestCoordinator;
  beforeAll(async () => {
    coord = await startCoordinator({ defaultRun: SMALL_RUN, adminToken: TOKEN, evaluation: 'inline' });
  });
  afterAll(() => coord?.close());

  test('the 11th failed login in a minute from one address gets 429 with Retry-After; another address still may try', async () => {
    const remoteAddress = freshAddress();
    for (let i = 0; i < 10; i++) {
      const res = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: `guess-${i}` }, remoteAddress });
      expect(res.statusCode, `attempt ${i + 1}`).toBe(401);
    }
    const eleventh = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: 'guess-10' }, remoteAddress });
    expect(eleventh.statusCode).toBe(429);
    expect(eleventh.json().error).toBe('too_many_attempts');
    expect(eleventh.json().message).toMatch(/try again in \d+ s/);
    const retryAfter = Number(eleventh.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN }, remoteAddress: freshAddress() })).statusCode).toBe(200);
  });

  test('logins count right or wrong: the 11th in a minute waits even with the right token', async () => {
    const remoteAddress = freshAddress();
    for (let i = 0; i < 10; i++) expect((await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN }, remoteAddress })).statusCode).toBe(200);
    const eleventh = await coord.app.inject({ method: 'POST', url: '/api/admin/login', payload: { token: TOKEN }, remoteAddress });
    expect(eleventh.statusCode).toBe(429);
    expect(eleventh.headers['set-cookie']).toBeUndefined();
  });

  test('the 7th dataset upload in a minute from one address gets 429, before the admin check or the upload is read', async () => {
    const remoteAddress = freshAddress();
    const upload = (authorization?: string) =>
      coord.app.inject({
        method: 'POST',
        url: '/api/datasets',
        headers: { ...(authorization ? { authorization } : {}), 'content-type': 'multipart/form-data; boundary=x' },
        payload: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\n\r\n--x--\r\n',
        remoteAddress,
      });
    for (let i = 0; i < 6; i++) expect((await upload(`Bearer ${TOKEN}`)).statusCode, `upload ${i + 1}`).toBe(400);
    // Refused before the admin check: 429, not 401, for a request with no credential at all.
    const seventh = await upload();
    expect(seventh.statusCode).toBe(429);
    expect(seventh.json().error).toBe('too_many_requests');
    expect(Number(seventh.headers['retry-after'])).toBeGreaterThan(0);
  });

  test('an oversized JSON body gets 413 naming the limit, and the coordinator keeps serving', async () => {
    const big = JSON.stringify({ token: 'x'.repeat(100 << 10) });
    const login413 = await fetch(`${coord.url}/api/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(login413.status).toBe(413);
    expect(await login413.json()).toEqual({ error: 'body_too_large', message: 'the request body is larger than the 64 KiB this route accepts' });

    // A run spec may be larger (1 MiB), not unbounded.
    const spec = JSON.stringify({ ...SMALL_RUN, name: 'y'.repeat(2 << 20) });
    const spec413 = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: spec });
    expect(spec413.status).toBe(413);
    expect(((await spec413.json()) as { message: string }).message).toContain('1 MiB');
    const specOk = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ ...SMALL_RUN, name: 'z'.repeat(100) }) });
    expect(specOk.status).not.toBe(413);

    expect((await fetch(`${coord.url}/healthz`)).status).toBe(200);
    const ok = await fetch(`${coord.url}/api/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    expect(ok.status).toBe(200);
  });
});
