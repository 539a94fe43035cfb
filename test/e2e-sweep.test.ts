// End to end in real Chromium: a 4-trial learning-rate sweep on mnist-10k worked through by 3
// contributor tabs, with median stopping giving up on the trial whose learning rate is far too
// small; then the admin page's sweep table and curves, and the board's race of curves, under the
// pages' Content-Security-Policy.
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { SweepView } from '../shared/rest-types.ts';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = resolve(root, 'dist/pages');
const TOKEN = 'e2e-sweep-test-token-0123456789';

/**
 * Four trials of a 784-16-10 perceptron under Adam, two at a time, 30 fixed-size rounds each with
 * an evaluation every 2 on 500 test digits. Grid order: the 1e-5 trial comes last, so the median
 * it is judged against is made of trials that learn (about 0.3 at round 6, against its 0.1).
 */
const SWEEP = {
  name: 'e2e-lr',
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 16, 10], activation: 'relu' },
  optimizer: { kind: 'adam', lr: 0.01 },
  batchPerTask: 64,
  sync: { taskSizing: 'fixed', minWorkers: 1, roundDeadlineMs: 5000 },
  stop: { maxRounds: 30 },
  evalEvery: 2,
  evalExamples: 500,
  checkpointEvery: 4,
  sweep: {
    method: 'grid',
    metric: 'accuracy',
    goal: 'maximize',
    parameters: { 'optimizer.lr': { choice: [0.01, 0.005, 0.002, 0.00001] } },
    maxConcurrent: 2,
    earlyTermination: { policy: 'median', evaluationInterval: 1, delayEvaluation: 2 },
  },
};

let coord: TestCoordinator;
let tabs: HeadlessWorkers;
/** The admin page's and the board's browser, apart from the contributors'. */
let browser: Browser;

beforeAll(async () => {
  await buildPagesIfStale(root, pagesDir, () => {});
  coord = await startCoordinator({ pagesDir, defaultRun: false, adminToken: TOKEN, evaluation: 'inline' });
  tabs = await HeadlessWorkers.launch(coord.url);
  browser = await chromium.launch(chromiumLaunchOptions());
}, 180_000);

afterAll(async () => {
  await tabs?.closeAll();
  await browser?.close();
  await coord?.close();
});

async function getSweep(id: string): Promise<SweepView> {
  return (await (await fetch(`${coord.url}/api/sweeps/${id}`)).json()) as SweepView;
}

/** The CSP refusals a page meets, from before its first script runs. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  const seen: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) seen.push(m.text());
  });
  page.on('pageerror', (e) => seen.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'}`));
  });
  return async () => [...seen, ...(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp))];
}

test('3 tabs work through a 4-trial learning-rate sweep; the bad trial is stopped early; the admin page and the board show it', async () => {
  const res = await fetch(`${coord.url}/api/sweeps`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(SWEEP) });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { sweep: SweepView }).sweep.id;

  // The admin page, logged in before any tab trains: the sweep and its first two trials, running.
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const adminCsp = await watchCsp(admin);
  await admin.goto(`${coord.url}/admin`);
  await admin.locator('#token').fill(TOKEN);
  await admin.getByRole('button', { name: 'Log in' }).click();
  await admin.locator(`#sweeps tbody tr[data-sweep-id="${id}"]`).waitFor();
  const rows = admin.locator('#sweep-trials tbody tr');
  await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
  expect(await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.state))).toEqual(['running', 'running']);
  expect(await admin.locator('#sweep-state').textContent()).toBe('running');

  await Promise.all([tabs.add(), tabs.add(), tabs.add()]);

  let view = await getSweep(id);
  const end = Date.now() + 90_000;
  while (view.state === 'running') {
    if (Date.now() > end) throw new Error(`sweep still running: ${JSON.stringify(view.trials)}`);
    await new Promise((r) => setTimeout(r, 250));
    view = await getSweep(id);
  }

  expect(view.state).toBe('completed');
  expect(view.trials.map((t) => t.values['optimizer.lr'])).toEqual([0.01, 0.005, 0.002, 0.00001]);
  const { store } = coord.app.crowdtrain;
  // The slow trial: stopped by the policy before its last round, with the reason its run records.
  const slow = view.trials[3];
  expect(slow.state).toBe('stopped');
  expect(slow.stoppedReason).toMatch(/^stopped early: median stopping: best .* below the median/);
  expect(store.getRun(slow.runId)!.stopReason).toBe(slow.stoppedReason);
  expect(store.getRun(slow.runId)!.version).toBeLessThan(30);
  // The best trial is the one whose own run recorded the highest accuracy, at that accuracy.
  const recorded = view.trials.map((t) => {
    const accs = store.metrics(t.runId).map((p) => p.accuracy).filter((a): a is number => a !== null);
    return { index: t.index, runId: t.runId, acc: accs.length ? Math.max(...accs) : -1 };
  });
  const top = [...recorded].sort((a, b) => b.acc - a.acc)[0];
  expect(view.best).toEqual({ index: top.index, runId: top.runId, metric: top.acc });
  expect(view.best!.index).not.toBe(3);
  expect(view.best!.metric).toBeGreaterThan(0.7);
  expect(store.latestCheckpoint(view.best!.runId)).toBeDefined();
  await tabs.closeAll();

  // The same admin page, not reloaded: the 4 trials with their values, the stopped one's reason,
  // the curves on one chart and a working link to the best trial's checkpoint.
  await expect.poll(() => admin.locator('#sweep-state').textContent(), { timeout: 10_000 }).toBe('completed');
  await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(4);
  expect(await rows.nth(3).getAttribute('data-state')).toBe('stopped');
  expect(await rows.nth(3).locator('td').nth(1).textContent()).toBe('optimizer.lr 0.00001');
  expect(await rows.nth(3).locator('td.reason').textContent()).toBe(slow.stoppedReason);
  expect(await rows.nth(view.best!.index).getAttribute('class')).toBe('best');
  await expect.poll(() => admin.locator('#sweep-chart').getAttribute('data-series'), { timeout: 10_000 }).toBe('4');
  expect(await admin.locator('#sweep-chart canvas').count()).toBe(1);
  // Every stopped trial, greyed: the slow one at least (the median may stop a middling one too).
  const stopped = view.trials.filter((t) => t.state === 'stopped').map((t) => String(t.index));
  expect(await admin.locator('#sweep-legend li[data-state="stopped"]').count()).toBe(stopped.length);
  const href = await admin.locator('#sweep-best-checkpoint').getAttribute('href');
  expect(href).toBe(`/api/runs/${encodeURIComponent(view.best!.runId)}/checkpoint`);
  const checkpoint = await admin.request.get(`${coord.url}${href}`);
  expect(checkpoint.status()).toBe(200);
  expect(await adminCsp()).toEqual([]);

  // The board's race: every trial's curve on one chart, the stopped one grey in the legend.
  const board = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const boardCsp = await watchCsp(board);
  await board.goto(`${coord.url}/board/sweep/${id}`);
  await expect.poll(() => board.locator('#sweep-chart').getAttribute('data-series'), { timeout: 10_000 }).toBe('4');
  expect(await board.locator('#sweep-chart canvas').count()).toBe(1);
  expect(await board.locator('#sweep-legend li').count()).toBe(4);
  expect(await board.locator('#sweep-legend li[data-state="stopped"]').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.trial))).toEqual(stopped);
  expect(await board.locator('#run-name').textContent()).toBe('e2e-lr');
  expect(await board.locator('#connection').textContent()).toBe('live');
  expect(await board.locator('#try-panel').isVisible()).toBe(false);
  expect(await boardCsp()).toEqual([]);
  expect((await fetch(`${coord.url}/board/sweep/nope`)).status).toBe(404);
}, 110_000);
