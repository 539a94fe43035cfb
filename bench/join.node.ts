// `npm run bench -- join`: how long a newcomer waits, from opening the coordinator's URL to the
// tab's first accepted gradient, and where that time goes. A real coordinator (the built pages and
// npm start's default run) and Chromium with a fresh profile each time (cold) or with the profile
// of an earlier visit (warm: its HTTP cache, its stored backend choice); the tab presses
// Contribute as soon as the page can take the click. Two cases: the tab alone, and a tab joining
// while a headless worker already trains. The page marks each step of joining
// (performance marks `crowdtrain:*`, client/worker/worker-client.ts), read back here.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { chromiumLaunchOptions } from '../server/chromium.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { startCoordinator } from '../test/helpers/coordinator.ts';
import { DEFAULT_RUN_SPEC } from '../shared/run-spec.ts';

const root = resolve(import.meta.dirname, '..');

/** The steps of joining, in order, as the page marks them. */
export const JOIN_STEPS = ['page-ready', 'click', 'run-known', 'backend-chosen', 'welcome', 'backend-ready', 'first-task', 'first-computed', 'first-accepted'] as const;

interface Visit {
  /** Milliseconds from opening the URL to each step. */
  steps: Record<string, number>;
  totalMs: number;
  backend: string;
}

async function visit(url: string, profile: string): Promise<Visit> {
  const launch = chromiumLaunchOptions();
  const context = await chromium.launchPersistentContext(profile, { executablePath: launch.executablePath, headless: true, args: launch.args });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const opened = Date.now();
    await page.goto(url, { waitUntil: 'commit' });
    // Navigation starts at performance.timeOrigin; the offset from `opened` is the request's own latency.
    const originLag = (await page.evaluate(() => performance.timeOrigin)) - opened;
    await page.waitForFunction(() => performance.getEntriesByName('crowdtrain:page-ready').length > 0, undefined, { timeout: 60_000, polling: 10 });
    await page.click('#contribute');
    try {
      await page.waitForFunction(() => performance.getEntriesByName('crowdtrain:first-accepted').length > 0, undefined, { timeout: 60_000, polling: 20 });
    } catch (err) {
      const status = await page.locator('#status').textContent().catch(() => '');
      const marks = await page.evaluate(() => performance.getEntriesByType('mark').map((m) => m.name)).catch(() => []);
      throw new Error(`no accepted gradient within 60 s; the page says "${status}", marks: ${marks.join(' ')}`);
    }
    const marks = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('crowdtrain:')).map((m) => [m.name.slice('crowdtrain:'.length), m.startTime])));
    const steps = Object.fromEntries(JOIN_STEPS.filter((s) => marks[s] !== undefined).map((s) => [s, Math.round(marks[s] + originLag)]));
    return { steps, totalMs: steps['first-accepted'], backend: (await page.locator('#backend').textContent()) ?? '' };
  } finally {
    await context.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function summarize(visits: Visit[]) {
  const steps = Object.fromEntries(JOIN_STEPS.map((s) => [s, median(visits.map((v) => v.steps[s]).filter((x) => x !== undefined))]));
  return { median_ms: median(visits.map((v) => v.totalMs)), runs_ms: visits.map((v) => v.totalMs), steps_median_ms: steps, backend: visits.at(-1)?.backend ?? '' };
}

export async function run(log: (m: string) => void, opts: { rows?: string } = {}): Promise<Record<string, unknown>> {
  const reps = Number(opts.rows ?? 5);
  const pagesDir = resolve(root, 'dist/pages');
  await buildPagesIfStale(root, pagesDir, log);
  const rows = [];
  const load = loadavg()[0].toFixed(1);
  for (const busy of [false, true]) {
    // npm start's default run, except that it never reaches its target while visitors come and go.
    const coord = await startCoordinator({ pagesDir, defaultRun: { ...DEFAULT_RUN_SPEC, stop: { maxRounds: 1_000_000 } } });
    // The worker already training is a process of its own, as a volunteer's machine would be.
    const others: ChildProcess[] = busy ? [spawn(process.execPath, [join(root, 'bin/crowdtrain.mjs'), 'worker', '--server', coord.url, '--backend', 'cpu', '--threads', '1', '--json'], { stdio: 'ignore' })] : [];
    try {
      if (busy) {
        const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
        const end = Date.now() + 60_000;
        while (run.version < 5 && Date.now() < end) await new Promise((r) => setTimeout(r, 100)); // the other worker trains first
      }
      const cold: Visit[] = [];
      for (let i = 0; i < reps; i++) {
        const profile = mkdtempSync(join(tmpdir(), 'crowdtrain-join-'));
        cold.push(await visit(coord.url, profile));
        rmSync(profile, { recursive: true, force: true });
        log(`${busy ? 'joining a training run' : 'alone'}, cold ${i + 1}/${reps}: ${cold.at(-1)!.totalMs} ms ${JSON.stringify(cold.at(-1)!.steps)}`);
      }
      const profile = mkdtempSync(join(tmpdir(), 'crowdtrain-join-'));
      await visit(coord.url, profile); // the earlier visit that warms the profile
      const warm: Visit[] = [];
      for (let i = 0; i < reps; i++) {
        warm.push(await visit(coord.url, profile));
        log(`${busy ? 'joining a training run' : 'alone'}, warm ${i + 1}/${reps}: ${warm.at(-1)!.totalMs} ms ${JSON.stringify(warm.at(-1)!.steps)}`);
      }
      rmSync(profile, { recursive: true, force: true });
      rows.push({ case: busy ? 'second worker' : 'first worker', cold: summarize(cold), warm: summarize(warm) });
    } finally {
      for (const w of others) w.kill('SIGTERM');
      await coord.close();
    }
  }
  return { goal: { warm_ms: 3000, cold_ms: 5000 }, steps: JOIN_STEPS, rows, load_average: load };
}
