// HTTPS for a classroom: a laptop reaching the coordinator by a name other than localhost gets no
// WebGPU over plain http (no secure context) and says so, and gets WebGPU over https. Real
// Chromium maps a made-up name to the loopback and accepts the coordinator's self-signed
// certificate only through its SPKI fingerprint, as the CLI prints it. Also: the certificate and
// key checks, and `npm start -- --https` keeping one fingerprint across restarts.
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jsQR from 'jsqr';
import { chromium, type Browser } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { loadTlsFiles, selfSignedTls, TlsError, type TlsIdentity } from '../server/tls.ts';
import { describeCoordinator, sharedDataDir, startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
const HOST = 'crowdtrain.test';

describe('certificates', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crowdtrain-tls-'));
  });

  test('the self-signed certificate is kept: the same fingerprints at the next start; a new name renews it on the same key', async () => {
    const first = await selfSignedTls(dir, ['localhost', '127.0.0.1', HOST]);
    expect(first.made).toBe('new');
    expect(first.tls.names).toEqual(['localhost', '127.0.0.1', HOST]);
    expect(first.tls.certSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(Buffer.from(first.tls.spkiSha256, 'base64')).toHaveLength(32);

    const again = await selfSignedTls(dir, ['127.0.0.1', HOST]);
    expect(again.made).toBe(false);
    expect(again.tls.certSha256).toBe(first.tls.certSha256);

    // The laptop moved to another network: the new address is covered, the key (and SPKI) kept.
    const moved = await selfSignedTls(dir, ['localhost', '10.1.2.3']);
    expect(moved.made).toBe('renewed');
    expect(moved.tls.names).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', HOST, '10.1.2.3']));
    expect(moved.tls.spkiSha256).toBe(first.tls.spkiSha256);
    expect(moved.tls.certSha256).not.toBe(first.tls.certSha256);
  });

  test('a missing file, a file that is no PEM, and a key of another pair are refused, naming the file', async () => {
    const a = (await selfSignedTls(join(dir, 'a'), ['localhost'])).tls;
    const b = (await selfSignedTls(join(dir, 'b'), ['localhost'])).tls;
    expect(loadTlsFiles(a.certFile, a.keyFile).spkiSha256).toBe(a.spkiSha256);

    const missing = join(dir, 'nope.pem');
    expect(() => loadTlsFiles(missing, a.keyFile)).toThrow(new TlsError(`cannot read the TLS certificate file ${missing}: no such file`));
    expect(() => loadTlsFiles(a.certFile, missing)).toThrow(new TlsError(`cannot read the TLS key file ${missing}: no such file`));
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    expect(() => loadTlsFiles(notPem, a.keyFile)).toThrow(`the TLS certificate file ${notPem} holds no PEM certificate`);
    expect(() => loadTlsFiles(a.certFile, notPem)).toThrow(`the TLS key file ${notPem}: it holds no PEM private key`);
    expect(() => loadTlsFiles(a.certFile, b.keyFile)).toThrow(`the TLS key in ${b.keyFile} does not match the certificate in ${a.certFile}`);
    const encrypted = join(dir, 'encrypted.pem');
    writeFileSync(encrypted, createPrivateKey(a.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'classroom' }));
    expect(() => loadTlsFiles(a.certFile, encrypted)).toThrow(`the TLS key file ${encrypted}: the key is encrypted with a passphrase; give it unencrypted`);
  });
});

describe('npm start -- --https', () => {
  /** Starts the CLI on port 0 and returns what it printed once it is up (then stops it), or when it exits. */
  async function startCli(args: string[], env: Record<string, string>): Promise<{ out: string; code: number | null }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], {
      cwd: root,
      // Nothing from the environment the tests run in: only what each test sets.
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CROWDTRAIN_SKIP_BUILD: '1', CROWDTRAIN_ADMIN_TOKEN: 'test-token-0123456789', CROWDTRAIN_DEFAULT_SPEC: '', CROWDTRAIN_HTTPS: '', CROWDTRAIN_TLS_CERT: '', CROWDTRAIN_TLS_KEY: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const onOutput = (d: Buffer) => {
      out += d;
      // The fingerprints are the banner's last lines: the coordinator is listening.
      if (/public key \(SPKI\).*\n/.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const stuck = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(stuck);
    return { out, code };
  }

  test('prints the https address and the fingerprints, the same at the next start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-cli-tls-'));
    const env = { CROWDTRAIN_DATA_DIR: dataDir };
    const first = await startCli(['--https'], env);
    expect(first.out).toMatch(/contribute at https:\/\/127\.0\.0\.1:\d+\//);
    const stored = loadTlsFiles(join(dataDir, 'tls/self-signed-cert.pem'), join(dataDir, 'tls/self-signed-key.pem'));
    expect(first.out).toContain(`certificate SHA-256: ${stored.certSha256}`);
    expect(first.out).toContain(`public key (SPKI) SHA-256, base64: ${stored.spkiSha256}`);
    expect(first.code).toBe(0);

    const second = await startCli([], { ...env, CROWDTRAIN_HTTPS: '1' });
    expect(second.out).toContain(`certificate SHA-256: ${stored.certSha256}`);
    expect(second.out).not.toContain('made a self-signed certificate');
  }, 120_000);

  test('--help lists the HTTPS flags and variables', async () => {
    const help = await startCli(['--help'], {});
    expect(help.code).toBe(0);
    for (const word of ['--https', '--cert FILE', '--key FILE', 'CROWDTRAIN_HTTPS=1', 'CROWDTRAIN_TLS_CERT', 'CROWDTRAIN_TLS_KEY']) expect(help.out).toContain(word);
  });

  test('a certificate without its key, or a key that does not match, stops it with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-cli-bad-'));
    const a = (await selfSignedTls(join(dir, 'a'), ['localhost'])).tls;
    const b = (await selfSignedTls(join(dir, 'b'), ['localhost'])).tls;
    const alone = await startCli(['--cert', a.certFile], { CROWDTRAIN_DATA_DIR: dir });
    expect(alone.code).toBe(2);
    expect(alone.out).toContain(`a certificate (${a.certFile}) but no key: give --key FILE`);
    const mismatched = await startCli([], { CROWDTRAIN_DATA_DIR: dir, CROWDTRAIN_TLS_CERT: a.certFile, CROWDTRAIN_TLS_KEY: b.keyFile });
    expect(mismatched.code).toBe(2);
    expect(mismatched.out).toContain(`the TLS key in ${b.keyFile} does not match the certificate in ${a.certFile}`);
  }, 120_000);
});

describe('in Chromium, at a name other than localhost', () => {
  let tls: TlsIdentity;
  let plain: TestCoordinator;
  let secure: TestCoordinator;
  let browser: Browser;

  beforeAll(async () => {
    await buildPagesIfStale(root, pagesDir, () => {});
    tls = (await selfSignedTls(mkdtempSync(join(tmpdir(), 'crowdtrain-tls-')), ['localhost', '127.0.0.1', HOST])).tls;
    // Fixed task sizes and a 15 s round: a tab on SwiftShader folds results without hurrying.
    const defaultRun = { dataset: 'mnist-10k', evalEvery: 1000, sync: { minWorkers: 1, roundDeadlineMs: 15_000, taskSizing: 'fixed' as const } };
    plain = await startCoordinator({ pagesDir, defaultRun });
    const app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), pagesDir, defaultRun, https: { cert: tls.cert, key: tls.key } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    secure = { app, url: `https://${HOST}:${(app.server.address() as { port: number }).port}`, close: () => app.close() };
    browser = await chromium.launch(chromiumLaunchOptions([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`, `--ignore-certificate-errors-spki-list=${tls.spkiSha256}`]));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await plain?.close();
    await secure?.close();
  });

  const workerOf = (coord: TestCoordinator) => {
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    return coord.app.crowdtrain.scheduler.workersOf(run.id)[0];
  };

  test('over plain http the page has no WebGPU, computes on the CPU and says it needs a secure context', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://${HOST}:${new URL(plain.url).port}/`);
    expect(await page.evaluate(() => [isSecureContext, 'gpu' in navigator])).toEqual([false, false]);

    await page.getByRole('button', { name: 'Contribute' }).click();
    await page.locator('#status[data-state="training"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#backend').textContent()).toBe('CPU');
    expect(await page.locator('#adapter').textContent()).toBe('none');
    expect(await page.locator('#reason').textContent()).toMatch(/WebGPU needs a secure context: open the page over https/);
    // The coordinator hears the same reason (the admin page lists it per worker).
    expect(workerOf(plain).hello.backendReason).toMatch(/secure context/);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  test('over https, with the certificate accepted by its SPKI fingerprint, the page gets WebGPU and its results are folded', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${secure.url}/?backend=webgpu`);
      expect(await page.evaluate(() => [isSecureContext, location.protocol])).toEqual([true, 'https:']);
      expect(await page.evaluate(async () => (await navigator.gpu.requestAdapter()) !== null)).toBe(true);

      await page.getByRole('button', { name: 'Contribute' }).click();
      await page.locator('#status[data-state="training"]').waitFor({ timeout: 90_000 });
      expect(await page.locator('#backend').textContent()).toBe('WebGPU');
      expect(await page.locator('#adapter').textContent()).toMatch(/swiftshader/i);
      // Over the https worker socket: the coordinator folds its WebGPU results.
      await waitFor(() => workerOf(secure)?.tasksDone >= 1, 60_000, 'the coordinator to fold a WebGPU result', async () => `${describeCoordinator(secure)}\ntab: ${await page.locator('#status').getAttribute('title')}`);
      expect(workerOf(secure).hello.backend).toBe('webgpu');
      expect(errors).toEqual([]);
    } finally {
      // Also when it fails: a retry must not find this tab's worker first.
      await page.close();
    }
  }, 180_000);

  test('plain http sent to the https port is redirected to the same address over https', async () => {
    const port = new URL(secure.url).port;
    // As a browser asks: the page loads at its https address.
    const page = await browser.newPage();
    await page.goto(`http://${HOST}:${port}/?from=bookmark`);
    expect(page.url()).toBe(`${secure.url}/?from=bookmark`);
    await page.getByRole('button', { name: 'Contribute' }).waitFor();
    // The answer itself: temporary (this port may serve plain http another day), and not cached.
    const res = await new Promise<IncomingMessage>((ok, fail) => httpGet(`http://127.0.0.1:${port}/board`, { headers: { host: `${HOST}:${port}` } }, ok).on('error', fail));
    res.resume();
    expect([res.statusCode, res.headers.location, res.headers['cache-control']]).toEqual([307, `${secure.url}/board`, 'no-store']);
    // A client that connects and leaves without a word harms nothing: the coordinator still answers.
    await new Promise<void>((ok) => connect(Number(port), '127.0.0.1', function (this: Socket) {
      this.destroy();
      ok();
    }));
    expect(await page.evaluate(async () => (await fetch('/healthz')).json())).toEqual({ ok: true });
    await page.close();
  }, 60_000);

  test('the board shows the https join address, in type and in its QR code', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(`${secure.url}/board`);
    await expect.poll(async () => page.locator('#join-qr').getAttribute('data-url'), { timeout: 30_000 }).toBe(`${secure.url}/`);
    expect(await page.locator('#join-url').textContent()).toBe(secure.url);
    const png = PNG.sync.read(await page.locator('#join-qr').screenshot());
    const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height);
    expect(code?.data).toBe(`${secure.url}/`);
    await page.close();
  }, 60_000);

  test('without its fingerprint Chromium warns; a person who clicks through the warning still gets WebGPU', async () => {
    const other = await chromium.launch(chromiumLaunchOptions([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]));
    try {
      const page = await other.newPage();
      // The fingerprint flag is what made the certificate trusted above: without it, Chromium's warning.
      await expect(page.goto(`${secure.url}/?backend=webgpu`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
      expect(await page.locator('body').innerText()).toContain('Your connection is not private');
      // What a student does in a quick classroom: Advanced, then Proceed.
      await page.locator('#details-button').click();
      await page.locator('#proceed-link').click();
      await page.waitForURL(`${secure.url}/?backend=webgpu`);
      expect(await page.evaluate(async () => [isSecureContext, (await navigator.gpu.requestAdapter()) !== null])).toEqual([true, true]);
      // The exception covers the worker socket too: the tab joins and trains on WebGPU.
      await page.getByRole('button', { name: 'Contribute' }).click();
      await page.locator('#status[data-state="training"]').waitFor({ timeout: 90_000 });
      expect(await page.locator('#backend').textContent()).toBe('WebGPU');
    } finally {
      await other.close();
    }
  }, 120_000);
});
