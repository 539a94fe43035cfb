// The contributor page's nickname in real Chromium: a friendly default, remembered across visits;
// what a person types (markup, control characters, spaces) is shown as the coordinator stores it,
// as text, never as markup, both beside the field and on the tab's leaderboard line.
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { sanitizeNickname } from '../shared/nickname.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
let coord: TestCoordinator;
let browser: Browser;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({ pagesDir, defaultRun: { batchPerTask: 16, evalEvery: 1000, sync: { minWorkers: 1, roundDeadlineMs: 15_000 } } });
  browser = await chromium.launch(chromiumLaunchOptions());
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await coord?.close();
});

test('a nickname with markup and a control character is shown escaped and trimmed, beside the field and on the leaderboard', async () => {
  const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Any dialog would mean a nickname ran as code.
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${coord.url}/?backend=cpu`);

  // A friendly default, the same after a reload (remembered in localStorage).
  const first = await page.locator('#nickname').inputValue();
  expect(first).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/);
  expect(await page.locator('#nickname-shown').textContent()).toBe(first);
  await page.reload();
  expect(await page.locator('#nickname').inputValue()).toBe(first);

  // Within the field's maxlength (24): cutting is checked in nickname.test.ts.
  const typed = '  <b>x</b>\u0007  <i>y</i> ';
  const clean = sanitizeNickname(typed)!;
  expect(clean).toBe('<b>x</b> <i>y</i>');
  await page.locator('#nickname').fill(typed);
  await page.locator('#nickname').press('Enter');
  await expect.poll(() => page.locator('#nickname-shown').textContent()).toBe(clean);
  expect(await page.locator('#nickname').inputValue()).toBe(clean);
  expect(await page.locator('b, i').count()).toBe(0);

  await page.getByRole('button', { name: 'Contribute' }).click();
  await page.locator('#status[data-state="training"]').waitFor({ timeout: 60_000 });
  const [worker] = coord.app.crowdtrain.scheduler.workersOf(run.id);
  expect(worker.hello.nickname).toBe(clean);

  // The tab's own line: rank, the nickname as text, its samples and rounds.
  const me = page.locator('#leaderboard-me');
  await expect.poll(() => me.locator('.who').textContent(), { timeout: 20_000 }).toBe(clean);
  expect(await me.getAttribute('data-rank')).toBe('1');
  expect(await me.locator('.rank').textContent()).toBe('#1 of 1');
  await expect.poll(async () => Number((await me.locator('.samples').textContent())!.split(' ')[0].replace(/,/g, '')), { timeout: 20_000 }).toBeGreaterThan(0);
  expect(await me.locator('.rounds').textContent()).toMatch(/^\d[\d,]* rounds$/);
  expect(await page.locator('#leaderboard li.me .who').textContent()).toBe(clean);
  expect(await page.locator('b, i').count()).toBe(0);

  // Renamed while contributing: the coordinator and the leaderboard line follow.
  await page.locator('#nickname').fill('Ada\tLovelace\u202e ');
  await page.locator('#nickname').press('Tab');
  await expect.poll(() => page.locator('#nickname-shown').textContent()).toBe('Ada Lovelace');
  await waitFor(() => worker.hello.nickname === 'Ada Lovelace', 10_000, 'the rename to reach the coordinator');
  await expect.poll(() => me.locator('.who').textContent(), { timeout: 10_000 }).toBe('Ada Lovelace');

  // The try-the-model pad gets the run's parameters as it trains, and a stroke gets a prediction.
  await expect.poll(async () => Number(/^\(round (\d+)\)$/.exec((await page.locator('#try-version').textContent()) ?? '')?.[1] ?? -1), { timeout: 20_000 }).toBeGreaterThan(0);
  const box = (await page.locator('#try-model canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 10 });
  await page.mouse.up();
  await expect.poll(() => page.locator('#try-model .try-top').getAttribute('data-label'), { timeout: 10_000 }).toMatch(/^\d$/);
  expect(errors).toEqual([]);
  await context.close();
}, 120_000);
