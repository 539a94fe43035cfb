// The admin page in real Chromium against a real coordinator: a wrong token is refused, the right
// one logs in; a run created from pasted YAML trains with two workers while its accuracy chart
// gains points and its worker table fills; Pause holds its round still and Resume moves it again;
// a CSV dataset uploads and a ragged one is refused with the reason; a text lists and uploads as
// characters, and the form gives it a context.
import { resolve } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
const TOKEN = 'admin-page-test-token-0123456789';

// Small and quick on Node CPU workers: an accuracy point every 2 rounds.
const SPEC_YAML = `name: admin-page-test
dataset: mnist-10k
model:
  layers: [784, 64, 10]
  activation: relu
optimizer: { kind: adam, lr: 0.002 }
batchPerTask: 32
evalEvery: 2
checkpointEvery: 20
`;

let coord: TestCoordinator;
let browser: Browser;
let page: Page;
const workers: WorkerClient[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({ pagesDir, defaultRun: false, adminToken: TOKEN });
  browser = await chromium.launch(chromiumLaunchOptions());
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 180_000);

afterAll(async () => {
  for (const w of workers) w.stop();
  await browser?.close();
  await coord?.close();
});

const points = async (chart: Locator) => Number(await chart.getAttribute('data-points'));
const round = async (row: Locator) => Number(await row.locator('td.round').textContent());

test('log in, create a run from YAML, watch it train, pause and resume it', async () => {
  await page.goto(`${coord.url}/admin`);
  await expect.poll(() => page.locator('#login').isVisible()).toBe(true);
  expect(await page.locator('#console').isVisible()).toBe(false);

  // A wrong token: refused with a message, still on the login panel.
  await page.locator('#token').fill('not-the-token');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/not the admin token/);
  expect(await page.locator('#console').isVisible()).toBe(false);

  await page.locator('#token').fill(TOKEN);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#console').waitFor({ state: 'visible', timeout: 10_000 });
  expect(await page.locator('#login').isVisible()).toBe(false);

  // A bad spec: the issue names the field, and no run is created.
  await page.locator('#yaml').fill(SPEC_YAML.replace('activation: relu', 'activation: tanh'));
  await page.locator('#create-yaml').click();
  await expect.poll(() => page.locator('#yaml-errors').textContent()).toContain('model.activation');
  expect(await page.locator('#runs tbody tr').count()).toBe(0);

  await page.locator('#yaml').fill(SPEC_YAML);
  await page.locator('#create-yaml').click();
  const row = page.locator('#runs tbody tr', { hasText: 'admin-page-test' });
  await row.waitFor({ timeout: 10_000 });
  const runId = (await row.getAttribute('data-run-id'))!;
  const run = coord.app.crowdtrain.scheduler.runs.get(runId)!;
  expect(run.spec.model.layers).toEqual([784, 64, 10]);
  expect(await page.locator('#yaml-errors li').count()).toBe(0);
  // A new run is selected and shown.
  await expect.poll(() => page.locator('#detail-name').textContent()).toBe('admin-page-test');

  const accuracy = page.locator('#accuracy-chart');
  expect(await points(accuracy)).toBe(0);
  workers.push(startCpuWorker(coord.url), startCpuWorker(coord.url));
  await expect.poll(() => page.locator('#workers-table tbody tr').count(), { timeout: 20_000 }).toBe(2);
  await expect.poll(() => points(accuracy), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
  const before = await points(accuracy);
  await expect.poll(() => points(accuracy), { timeout: 20_000 }).toBeGreaterThan(before);
  expect(await points(page.locator('#loss-chart'))).toBeGreaterThan(await points(accuracy));
  await expect.poll(() => round(row)).toBeGreaterThan(0);
  // Bytes per example each way (float32 gradients of 50,890 parameters up, the parameters down).
  await expect.poll(() => row.locator('td.traffic').textContent(), { timeout: 10_000 }).toMatch(/^\d+(\.\d)? k?B ↑ \d+(\.\d)? k?B ↓$/);
  await expect.poll(() => page.locator('#workers-table tbody tr td:nth-child(4)').allTextContents()).toEqual(['cpu', 'cpu']);

  // Pause: the state shows it and the round holds still.
  // The pause's event comes before the open round is dropped: the tasks then in flight.
  let atPause: { late: number; inFlight: number } | undefined;
  const unsubscribe = coord.app.crowdtrain.events.subscribe((e) => {
    if (e.runId === runId && e.kind === 'state' && e.message === 'run paused') atPause ??= { late: run.counters.late, inFlight: coord.app.crowdtrain.scheduler.sync.openTasks(runId).length };
  });
  await row.getByRole('button', { name: 'Pause' }).click();
  await expect.poll(() => row.locator('.state').textContent()).toBe('paused');
  expect(await page.locator('#detail-state').textContent()).toBe('paused');
  expect(await row.getByRole('button', { name: 'Resume' }).isEnabled()).toBe(true);
  expect(await row.getByRole('button', { name: 'Pause' }).isEnabled()).toBe(false);
  const pausedAt = await round(row);
  // Every task in flight at the pause comes back and is turned away as late: then no result is
  // left that could complete a round, and the workers ask for no task while the run is paused.
  await waitFor(() => atPause !== undefined && run.counters.late >= atPause.late + atPause.inFlight, 30_000, 'the tasks in flight at the pause to come back');
  unsubscribe();
  expect(await round(row)).toBe(pausedAt);
  expect(run.version).toBe(pausedAt);

  // Resume: rounds rise again, on the page.
  await row.getByRole('button', { name: 'Resume' }).click();
  await expect.poll(() => row.locator('.state').textContent()).toBe('running');
  await expect.poll(() => round(row), { timeout: 20_000 }).toBeGreaterThan(pausedAt + 2);

  // Dataset upload: a good CSV lands in the table and the run form's choices; a bad one says why.
  const csv = ['x1,x2,x3,label', ...Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2},${i % 3}`)].join('\n');
  await page.locator('#dataset-form input[name="name"]').fill('points');
  await page.locator('#dataset-files').setInputFiles({ name: 'points.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload' }).click();
  await expect.poll(() => page.locator('#dataset-result').textContent()).toMatch(/^Uploaded "points": 3 features, 3 classes/);
  expect(await page.locator('#datasets tbody tr', { hasText: 'points' }).count()).toBe(1);
  expect(await page.locator('#dataset-select option[value="points"]').count()).toBe(1);
  await page.locator('#dataset-form input[name="name"]').fill('ragged');
  const ragged = csv.split('\n').map((line, i) => (i === 5 ? '1,2' : line)).join('\n');
  await page.locator('#dataset-files').setInputFiles({ name: 'ragged.csv', mimeType: 'text/csv', buffer: Buffer.from(ragged) });
  await page.getByRole('button', { name: 'Upload' }).click();
  await expect.poll(() => page.locator('#dataset-result.error').textContent()).toMatch(/^Upload refused: ragged\.csv: line 6 has 2 cells/);

  // A text: listed as one, uploaded as characters, and the form gives it a context and a transformer.
  expect(await page.locator('#dataset-select option[value="moby-dick"]').textContent()).toMatch(/^moby-dick — text, 83 characters, [\d,.\s]+ train characters$/);
  expect(await page.locator('#dataset-select option[value="mnist"]').textContent()).toMatch(/^mnist — images 1×28×28, 10 classes, 60.000 train$/);
  await page.locator('#dataset-form input[name="name"]').fill('letters');
  await page.locator('#dataset-files').setInputFiles({ name: 'letters.txt', mimeType: 'text/plain', buffer: Buffer.from('abcd'.repeat(200)) });
  await page.getByRole('button', { name: 'Upload' }).click();
  await expect.poll(() => page.locator('#dataset-result').textContent()).toMatch(/^Uploaded "letters": a text of 800 characters, 4 distinct/);
  await page.locator('#dataset-select').selectOption('letters');
  expect(await page.locator('#create-form [name="context"]').isVisible()).toBe(true);
  expect(await page.locator('#create-form [name="hidden"]').isVisible()).toBe(false);
  await page.locator('#form-to-yaml').click();
  const yaml = await page.locator('#yaml').inputValue();
  expect(yaml).toContain('context: 64');
  expect(yaml).toContain('transformer-block');
  // The coordinator's preview takes it: the model fits the text's windows.
  await expect.poll(() => page.locator('#spec-preview-summary').textContent()).toMatch(/^Input \[64\]/);
  expect(await page.locator('#yaml-errors li').count()).toBe(0);
  expect(pageErrors).toEqual([]);
}, 90_000);
