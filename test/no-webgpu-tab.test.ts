// A contributor whose browser has no WebGPU still contributes: the page says why it computes on
// the CPU, trains, and the coordinator folds its results. Real Chromium with navigator.gpu
// removed before any page script runs; multi-tab runs belong in e2e-contributors.test.ts.
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let browser: Browser;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  // Fixed task sizes: one task per worker a round, so the tab's folded tasks are rounds.
  coord = await startCoordinator({ pagesDir, defaultRun: { evalEvery: 1000, sync: { minWorkers: 1, roundDeadlineMs: 15_000, taskSizing: 'fixed' } } });
  browser = await chromium.launch(chromiumLaunchOptions());
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await coord?.close();
});

const contributed = (text: string) => Number(text.split(' ')[0].replace(/,/g, ''));

test('a tab without WebGPU contributes through the CPU backend and says why', async () => {
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  const context = await browser.newContext();
  await context.addInitScript(() => {
    // As in a browser without WebGPU (or on an insecure origin): no navigator.gpu and none of the
    // GPU* interfaces (GPUBufferUsage, GPUShaderStage, ...).
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    for (const name of Object.getOwnPropertyNames(globalThis)) if (/^GPU[A-Z]/.test(name)) delete (globalThis as Record<string, unknown>)[name];
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${coord.url}/`);
  // The browser really has no WebGPU here, else the test would check nothing.
  expect(await page.evaluate(() => 'gpu' in navigator && navigator.gpu !== undefined)).toBe(false);
  expect(await page.evaluate(() => typeof (globalThis as Record<string, unknown>).GPUBufferUsage)).toBe('undefined');

  await page.getByRole('button', { name: 'Contribute' }).click();
  await page.locator('#status[data-state="training"]').waitFor({ timeout: 60_000 });
  expect(await page.locator('#backend').textContent()).toBe('CPU');
  expect(await page.locator('#reason').textContent()).toMatch(/no WebGPU/i);
  expect(await page.locator('#adapter').textContent()).toBe('none');

  // Its results are folded: the count the person sees rises, and the coordinator agrees.
  const before = contributed((await page.locator('#contributed').textContent()) ?? '');
  await expect.poll(async () => contributed((await page.locator('#contributed').textContent()) ?? ''), { timeout: 30_000 }).toBeGreaterThan(before);
  const [worker] = coord.app.crowdtrain.scheduler.workersOf(run.id);
  expect(worker.hello.backend).toBe('cpu');
  expect(worker.hello.backendReason).toMatch(/no WebGPU/i);
  await waitFor(() => worker.tasksDone >= 3, 30_000, 'the coordinator to fold 3 of its results');
  expect(run.version).toBeGreaterThanOrEqual(3);
  expect(errors).toEqual([]);
  await context.close();
}, 120_000);
