// The classroom board end to end: its routes and the /board namespace's pace with Node workers,
// then in real Chromium: 4 contributor tabs join, the board (a separate 1280x720 page) shows a
// tile each with live samples/s, drops a closed tab's tile, shows accuracy rising, a QR code that
// decodes to the contributor URL, and fits the screen without scrolling.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jsQR from 'jsqr';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { ManualClock } from '../server/clock.ts';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { BOARD_NAMESPACE, BOARD_UPDATE_MS, PARAMS_VERSION_HEADER, type BoardServerEvents, type BoardUpdate } from '../shared/board-protocol.ts';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { sharedDataDir, startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');

const startBoardCoordinator = startCoordinator;

async function stopQuietly(coord: TestCoordinator | undefined, workers: WorkerClient[]): Promise<void> {
  if (coord) for (const w of workers) w.stop();
}

/** The built pages (board.html among them). */
async function buildBoardPages(): Promise<string> {
  const dist = resolve(root, 'dist/pages');
  await buildPagesIfStale(root, dist, () => {});
  return dist;
}

/** Clock steps of the pace test; a board tick is BOARD_UPDATE_MS. */
const STEP_MS = 250;

describe('board routes and namespace (Node workers)', () => {
  let coord: TestCoordinator;
  const workers: WorkerClient[] = [];
  // The coordinator's time moves only when the pace test moves it: the board's pace is then
  // measured in the clock it is defined in, without sleeping.
  const clockStart = Date.UTC(2026, 0, 1);
  const clock = new ManualClock(clockStart);

  beforeAll(async () => {
    coord = await startBoardCoordinator({ clock, defaultRun: { dataset: 'mnist-10k', evalEvery: 5, stop: { targetAccuracy: 0.999 } } });
  });
  afterAll(async () => {
    await stopQuietly(coord, workers);
    await coord?.close();
  });

  test('the page, the parameters and the join URL over HTTP', async () => {
    const { app } = coord;
    const run = [...app.crowdtrain.scheduler.runs.values()][0];

    const unknown = await app.inject('/board/no-such-run');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'unknown_run', message: expect.stringContaining('no-such-run') });
    const current = await app.inject('/board');
    expect(current.statusCode).toBe(302);
    expect(current.headers.location).toBe(`/board/${run.id}`);

    const params = await app.inject(`/api/runs/${run.id}/params`);
    expect(params.statusCode).toBe(200);
    expect(params.headers[PARAMS_VERSION_HEADER]).toBe(String(run.version));
    expect(params.rawPayload.byteLength).toBe(run.paramCount * 4);
    const got = new Float32Array(params.rawPayload.buffer.slice(params.rawPayload.byteOffset, params.rawPayload.byteOffset + params.rawPayload.byteLength));
    expect(got).toEqual(run.params);
    expect((await app.inject('/api/runs/nope/params')).statusCode).toBe(404);

    const join = await app.inject({ url: '/api/join', headers: { host: 'classroom.example:8080' } });
    expect(join.json()).toEqual({ url: 'http://classroom.example:8080/' });
  });

  test('CROWDTRAIN_PUBLIC_URL is the join URL when set', async () => {
    process.env.CROWDTRAIN_PUBLIC_URL = 'https://train.school.example/';
    try {
      const app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), defaultRun: false });
      expect((await app.inject('/api/join')).json()).toEqual({ url: 'https://train.school.example/' });
      await app.close();
    } finally {
      delete process.env.CROWDTRAIN_PUBLIC_URL;
    }
  });

  test('an unknown run is refused at the handshake', async () => {
    const s = connect(`${coord.url}${BOARD_NAMESPACE}`, { auth: { runId: 'nope' }, transports: ['websocket'], reconnection: false });
    const err = await new Promise<Error & { data?: { code: string } }>((res) => s.on('connect_error', res));
    s.close();
    expect(err.data?.code).toBe('unknown_run');
  });

  test('one aggregated update a second while 4 workers train, with every round once', async () => {
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    for (let i = 0; i < 4; i++) workers.push(startCpuWorker(coord.url, { hello: { nickname: `node-${i}` } }));
    await waitFor(() => coord.app.crowdtrain.scheduler.workersOf(run.id).length === 4, 20_000, '4 workers to join');
    // Rounds need no clock time: they close when every task is in.
    await waitFor(() => run.version >= 5, 30_000, 'a few rounds');

    // Times are the coordinator's clock when the update arrived: each step below waits for the
    // updates its ticks sent before moving the clock on, so an update's time is its tick's.
    const updates: { at: number; u: BoardUpdate }[] = [];
    const board: Socket<BoardServerEvents> = connect(`${coord.url}${BOARD_NAMESPACE}`, { auth: { runId: run.id }, transports: ['websocket'] });
    board.on('board', (u) => updates.push({ at: clock.now(), u }));
    await new Promise<void>((r) => board.once('connect', () => r()));
    /**
     * Moves the clock `ms` forward in steps of STEP_MS, each once the run has committed another
     * round: BOARD_UPDATE_MS / STEP_MS rounds or more per board tick, however fast or loaded
     * the machine.
     */
    const advance = async (ms: number) => {
      for (let moved = 0; moved < ms; moved += STEP_MS) {
        const version = run.version;
        await waitFor(() => run.version > version, 30_000, 'the next round');
        const ticks = Math.floor((clock.now() + STEP_MS - clockStart) / BOARD_UPDATE_MS) - Math.floor((clock.now() - clockStart) / BOARD_UPDATE_MS);
        const heard = updates.length;
        clock.advance(STEP_MS);
        if (ticks > 0) await waitFor(() => updates.length >= heard + ticks, 5000, 'the update of this tick');
      }
    };
    await advance(BOARD_UPDATE_MS);
    expect(updates.length, 'the first update').toBeGreaterThanOrEqual(1);
    const startVersion = run.version;
    const t0 = clock.now();
    await advance(6000);
    const window = updates.filter((x) => x.at > t0);
    const rounds = run.version - startVersion;
    board.close();

    // About one a second: never a message per round or per worker.
    expect(window.length).toBeGreaterThanOrEqual(4);
    expect(window.length).toBeLessThanOrEqual(7);
    for (let i = 1; i < updates.length; i++) expect(updates[i].at - updates[i - 1].at).toBeGreaterThan(700);
    expect(rounds).toBeGreaterThan(window.length);

    // The first update carries the history; later ones only new points, each round once.
    const versions = updates.flatMap((x) => x.u.points.map((p) => p.version));
    expect(updates[0].u.points.length).toBeGreaterThan(1);
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(versions.at(-1)).toBe(updates.at(-1)!.u.version);

    const last = updates.at(-1)!.u;
    expect(last.workers).toHaveLength(4);
    expect(last.grid.samplesPerSec).toBeGreaterThan(0);
    expect(last.grid.bestWorkerSamplesPerSec).toBe(Math.max(...last.workers.map((w) => w.samplesPerSec)));
    const shares = last.workers.map((w) => w.share);
    for (const s of shares) expect(s).toBeGreaterThan(0);
    expect(shares.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1.0001);
  });
});

describe('the board in Chromium with 4 contributor tabs', () => {
  let coord: TestCoordinator;
  let tabs: HeadlessWorkers;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const pagesDir = await buildBoardPages();
    expect(existsSync(join(pagesDir, 'board.html'))).toBe(true);
    coord = await startBoardCoordinator({ pagesDir, defaultRun: { dataset: 'mnist-10k', evalEvery: 3, stop: { targetAccuracy: 0.999 } } });
    tabs = await HeadlessWorkers.launch(coord.url);
    browser = await chromium.launch(chromiumLaunchOptions());
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await tabs?.closeAll();
    await coord?.close();
  });

  const tileCount = () => page.locator('#tiles [data-worker-id]').count();
  const accuracy = async () => {
    const t = (await page.locator('#accuracy').textContent()) ?? '';
    return t.includes('%') ? Number.parseFloat(t) / 100 : null;
  };

  test('tiles come and go with tabs, accuracy rises, the QR code reads, nothing scrolls', async () => {
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    const errors: string[] = [];
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${coord.url}/board/${run.id}`);

    const joined = await Promise.all([tabs.add(), tabs.add(), tabs.add(), tabs.add()]);
    await expect.poll(tileCount, { timeout: 20_000 }).toBe(4);
    await expect
      .poll(() => page.locator('#tiles [data-worker-id] .sps').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.sps))), { timeout: 30_000 })
      .toSatisfy((sps: number[]) => sps.length === 4 && sps.every((v) => v > 0));
    // A tile shows a speed once the coordinator has timed one task of its tab, even a task that
    // came back after its lease (a tab's first task fetches the shards it needs); the class's
    // speed is that of committed rounds, so wait until the board shows one.
    await expect.poll(async () => Number(((await page.locator('#rounds').textContent()) ?? '').replace(/,/g, '')), { timeout: 60_000 }).toBeGreaterThan(0);
    expect(Number(await page.locator('#grid-sps').getAttribute('data-value'))).toBeGreaterThan(0);
    // The model in one line; the strip evaluates its first 2,000 test digits with the run's parameters.
    expect(await page.locator('#model-line').textContent()).toMatch(/\d parameters$/);
    await expect.poll(() => page.locator('#wrong-digits .wrong-count').textContent(), { timeout: 30_000 }).toMatch(/^[\d,]+ of 2000 test digits wrong/);

    // Accuracy on the board rises as the class trains.
    await expect.poll(accuracy, { timeout: 60_000 }).not.toBeNull();
    const first = (await accuracy())!;
    await expect.poll(accuracy, { timeout: 120_000 }).toBeGreaterThan(first);
    expect(Number(await page.locator('#accuracy-chart').getAttribute('data-points'))).toBeGreaterThan(1);

    // A tab closed as a person closes it: its tile leaves within a few seconds.
    await tabs.close(joined[3]);
    await expect.poll(tileCount, { timeout: 10_000 }).toBe(3);

    // The QR code, as a camera sees it, reads as the contributor URL.
    const png = PNG.sync.read(await page.locator('#join-qr').screenshot());
    const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height);
    expect(code?.data).toBe(`${coord.url}/`);
    expect(await page.locator('#join-url').textContent()).toBe(coord.url.replace('http://', ''));

    for (const [width, height] of [
      [1280, 720],
      [1920, 1080],
    ]) {
      await page.setViewportSize({ width, height });
      await page.waitForTimeout(500);
      const fit = await page.evaluate(() => {
        const d = document.documentElement;
        const panels = [...document.querySelectorAll<HTMLElement>('.board-header, section.panel')].map((p) => {
          const r = p.getBoundingClientRect();
          return { id: p.id || p.className, left: r.left, top: r.top, right: r.right, bottom: r.bottom, w: r.width, h: r.height };
        });
        return { scrollW: d.scrollWidth, scrollH: d.scrollHeight, w: innerWidth, h: innerHeight, panels };
      });
      expect(fit.scrollH, `no vertical scrollbar at ${width}x${height}`).toBeLessThanOrEqual(fit.h);
      expect(fit.scrollW, `no horizontal scrollbar at ${width}x${height}`).toBeLessThanOrEqual(fit.w);
      expect(fit.panels).toHaveLength(7);
      for (const p of fit.panels) {
        expect(p.left, `${p.id} at ${width}x${height}`).toBeGreaterThanOrEqual(0);
        expect(p.top, `${p.id} at ${width}x${height}`).toBeGreaterThanOrEqual(0);
        expect(p.right, `${p.id} at ${width}x${height}`).toBeLessThanOrEqual(width);
        expect(p.bottom, `${p.id} at ${width}x${height}`).toBeLessThanOrEqual(height);
        expect(p.w * p.h, `${p.id} at ${width}x${height} has room`).toBeGreaterThan(100 * 100);
      }
      await page.screenshot({ path: join(tmpdir(), `crowdtrain-board-${width}x${height}.png`) });
    }
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(tmpdir(), 'crowdtrain-board-1920x1080-dark.png') });
    expect(errors).toEqual([]);
  }, 400_000);

  test('a class of 30 more: as many tiles as fit, "+N more" for the rest, still no scrolling', async () => {
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    await page.setViewportSize({ width: 1280, height: 720 });
    const many = Array.from({ length: 30 }, (_, i) => startCpuWorker(coord.url, { hello: { nickname: `student ${i + 1}` } }));
    try {
      const total = coord.app.crowdtrain.scheduler.workersOf(run.id).length + many.length;
      await waitFor(() => coord.app.crowdtrain.scheduler.workersOf(run.id).length === total, 30_000, 'the class to join');
      await expect.poll(tileCount, { timeout: 10_000 }).toBe(total);
      const visible = await page.locator('#tiles [data-worker-id]:visible').count();
      expect(visible).toBeGreaterThan(8);
      expect(visible).toBeLessThan(total);
      expect(await page.locator('#tiles .more').textContent()).toBe(`+${total - visible} more`);
      const fit = await page.evaluate(() => {
        const tiles = document.getElementById('tiles')!;
        return { scrollH: document.documentElement.scrollHeight, h: innerHeight, tilesScroll: tiles.scrollHeight, tilesH: tiles.clientHeight };
      });
      expect(fit.scrollH).toBeLessThanOrEqual(fit.h);
      expect(fit.tilesScroll).toBeLessThanOrEqual(fit.tilesH + 1);
      await page.screenshot({ path: join(tmpdir(), 'crowdtrain-board-1280x720-class.png') });
    } finally {
      await stopQuietly(coord, many);
    }
  }, 120_000);
});
