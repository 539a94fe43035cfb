// `crowdtrain worker`, the contributor without a browser (node/worker-cli.ts through
// bin/crowdtrain.mjs, a real child process): it trains one run together with a Chromium tab past
// the MLP's target, its results folded like the tab's; SIGTERM mid-task gives its task back at
// once and folds nothing of it; a bad option is refused with what was wrong; and Dawn, the
// WebGPU in Node it can use, computes the gradients of the CPU reference with the page's kernels.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { buildPagesIfStale } from '../server/build-pages.ts';
import { HeadlessWorkers } from '../server/headless-workers.ts';
import { dawnEnvironment } from '../node/dawn.ts';
import { startCoordinator, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const BIN = join(root, 'bin/crowdtrain.mjs');
const TSX = join(root, 'node_modules/.bin/tsx');

interface Cli {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<number | null>;
}

const open: { clis: Cli[]; coords: TestCoordinator[]; tabs: HeadlessWorkers[] } = { clis: [], coords: [], tabs: [] };

afterEach(async () => {
  for (const c of open.clis.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  for (const t of open.tabs.splice(0)) await t.closeAll();
  for (const c of open.coords.splice(0)) await c.close();
});

function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): Cli {
  const child = spawn(process.execPath, [BIN, 'worker', '--json', '--cache-dir', mkdtempSync(join(tmpdir(), 'crowdtrain-cache-')), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const cli: Cli = { child, lines: [], stderr: [], exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const p of parts) if (p.trim()) cli.lines.push(JSON.parse(p));
  });
  child.stderr!.on('data', (d: Buffer) => cli.stderr.push(d.toString()));
  open.clis.push(cli);
  return cli;
}

const headless = (coord: TestCoordinator, runId: string) => coord.app.crowdtrain.scheduler.workersOf(runId).find((w) => w.hello.userAgent?.startsWith('crowdtrain-worker'));

describe('crowdtrain worker', () => {
  test('a headless CPU worker on 2 threads and a Chromium tab train one run past the MLP target together', async () => {
    const pagesDir = resolve(root, 'dist/pages');
    await buildPagesIfStale(root, pagesDir, () => {});
    const coord = await startCoordinator({ pagesDir, defaultRun: { dataset: 'mnist-10k', evalEvery: 5, stop: { targetAccuracy: 0.9 } } });
    open.coords.push(coord);
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    const tabs = await HeadlessWorkers.launch(coord.url);
    open.tabs.push(tabs);
    const tab = await tabs.add('backend=cpu');
    const cli = startCli(['--server', coord.url, '--backend', 'cpu', '--threads', '2', '--nickname', 'lab-server']);
    await waitFor(() => run.state === 'completed', 180_000, 'the run to reach 0.90');
    expect(run.accuracy).toBeGreaterThanOrEqual(0.9);
    const workers = coord.app.crowdtrain.scheduler.workersOf(run.id);
    const node = headless(coord, run.id);
    const page = workers.find((w) => w !== node);
    expect(node?.hello.nickname).toBe('lab-server');
    expect(node?.hello.backend).toBe('cpu');
    // Both were folded: the same checks, the same sums.
    expect(node!.tasksDone).toBeGreaterThan(0);
    expect(page!.tasksDone).toBeGreaterThan(0);
    expect(node!.rejected).toBe(0);
    expect(Number((await tabs.text(tab, '#contributed')).split(' ')[0].replace(/,/g, ''))).toBeGreaterThan(0);
    // What the worker printed agrees with what the coordinator counted.
    await waitFor(() => cli.lines.some((l) => l.type === 'progress' && Number(l.examples) > 0), 15_000, 'a progress line with examples');
    expect(cli.lines.some((l) => l.type === 'progress' && l.runId === run.id && l.backend === 'cpu ×2')).toBe(true);
  }, 300_000);

  test('SIGTERM mid-task: the coordinator takes the task back within a second and folds nothing of it', async () => {
    const coord = await startCoordinator({ defaultRun: { dataset: 'mnist-10k', evalEvery: 1000, sync: { targetRoundMs: 2000 }, stop: { maxRounds: 10_000 } } });
    open.coords.push(coord);
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    const sync = coord.app.crowdtrain.scheduler.sync;
    const cli = startCli(['--server', coord.url, '--backend', 'cpu', '--threads', '1']);
    await waitFor(() => (headless(coord, run.id)?.tasksDone ?? 0) >= 3, 60_000, 'three tasks done');
    // A task just handed out: the worker is computing it.
    await waitFor(() => sync.openTasks(run.id).some((t) => Date.now() - t.sentAt < 300), 20_000, 'a fresh task');
    const worker = headless(coord, run.id)!;
    const before = { folded: run.counters.folded, samples: worker.samples };
    const killedAt = Date.now();
    cli.child.kill('SIGTERM');
    await waitFor(() => sync.openTasks(run.id).length === 0, 1000, 'the task to come back');
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan(1000);
    expect(await cli.exited).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(run.counters.folded).toBe(before.folded);
    expect(worker.samples).toBe(before.samples);
    expect(headless(coord, run.id)).toBeUndefined();
    const summary = cli.lines.find((l) => l.type === 'summary');
    expect(summary).toMatchObject({ signal: 'SIGTERM' });
  }, 120_000);

  test('where Dawn finds no Vulkan driver, auto says why in one line and trains on the CPU', async () => {
    const coord = await startCoordinator({ defaultRun: { dataset: 'mnist-10k', evalEvery: 1000, stop: { maxRounds: 10_000 } } });
    open.coords.push(coord);
    const run = [...coord.app.crowdtrain.scheduler.runs.values()][0];
    // As if already started again with Dawn's environment, but with no Vulkan loader on the path.
    const { LD_LIBRARY_PATH: _l, VK_ICD_FILENAMES: _v, ...env } = process.env;
    const cli = startCli(['--server', coord.url, '--backend', 'auto', '--threads', '1'], { ...env, CROWDTRAIN_DAWN_ENV: '1' });
    await waitFor(() => (headless(coord, run.id)?.tasksDone ?? 0) >= 1, 60_000, 'a task done on the CPU');
    const notes = cli.lines.filter((l) => l.type === 'note').map((l) => String(l.message));
    expect(notes.filter((n) => n.startsWith('backend:'))).toEqual([expect.stringMatching(/^backend: cpu ×1: no WebGPU: .*no adapter/)]);
    // The coordinator is told what the worker computes on.
    expect(headless(coord, run.id)!.hello.backend).toBe('cpu');
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  }, 120_000);

  test('a bad option is refused with what was wrong', async () => {
    const cli = startCli(['--threads', 'lots']);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr.join('')).toContain('--threads must be a whole number from 1 to 256, got "lots"');
  });
});

describe('Dawn (WebGPU in Node)', () => {
  test('gradients of an MLP, a CNN and a transformer equal the CPU reference, with the page kernels', async () => {
    const child = spawn(TSX, [join(root, 'test/helpers/dawn-gradients.ts')], { env: { ...process.env, ...dawnEnvironment() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise((r) => child.on('exit', r));
    const last = out.trim().split('\n').pop() ?? '';
    expect(last, `no result; stderr: ${err}`).toMatch(/^\{/);
    const report = JSON.parse(last) as { error?: string; adapter?: { vendor: string; architecture: string }; cases: { name: string; lossRel: number; nonzero: boolean; tensors: { name: string; rel: number }[] }[] };
    expect(report.error, 'Dawn should start here (SwiftShader through Chromium’s Vulkan driver)').toBeUndefined();
    expect(report.adapter?.architecture).toBeTruthy();
    expect(report.cases.map((c) => c.name)).toEqual(['MLP', 'CNN', 'transformer']);
    // The Chromium kernel tests' tolerances: each tensor to 1e-4 of its largest gradient, the loss to 1e-5.
    for (const c of report.cases) {
      expect(c.nonzero).toBe(true);
      expect(c.lossRel, `${c.name} loss`).toBeLessThanOrEqual(1e-5);
      for (const t of c.tensors) expect(t.rel, `${c.name} ${t.name}`).toBeLessThanOrEqual(1e-4);
    }
  }, 120_000);
});
