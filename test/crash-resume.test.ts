// A coordinator killed with SIGKILL mid-run picks up where it left off: started again on the
// same data dir it restores each run from its last checkpoint (at most one checkpoint interval
// of rounds lost), workers reconnect by themselves, accuracy keeps rising, and no checkpoint is
// ever found half-written.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { DEFAULT_RUN_SPEC } from '../shared/run-spec.ts';
import { runSpecToYaml } from '../shared/run-spec-text.ts';
import { decodeSafetensors } from '../shared/safetensors.ts';
import { startCpuWorker, waitFor } from './helpers/coordinator.ts';

const root = resolve(import.meta.dirname, '..');
const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-crash-'));
// The default run without its target accuracy (it would complete before the kill), in rounds
// of one 64-example task per worker: a round is as short as a task, so the 125 rounds before the
// kill take seconds, not the minute of half-second speed-sized rounds.
// On mnist-10k: its 2,000 test digits are evaluated well before the kill on a loaded machine.
const specFile = join(mkdtempSync(join(tmpdir(), 'crowdtrain-crash-spec-')), 'run.yaml');
writeFileSync(specFile, runSpecToYaml({ ...DEFAULT_RUN_SPEC, dataset: 'mnist-10k', stop: {}, sync: { taskSizing: 'fixed' } }));
const children: ChildProcess[] = [];
const workers: WorkerClient[] = [];
afterAll(() => {
  for (const w of workers) w.stop();
  for (const c of children) c.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function startCoordinatorProcess(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', CROWDTRAIN_DATA_DIR: dataDir, CROWDTRAIN_DEFAULT_SPEC: specFile, CROWDTRAIN_SKIP_BUILD: '1', CROWDTRAIN_ADMIN_TOKEN: 'crash-test-token', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('crowdtrain is up') || child.exitCode !== null, 60_000, 'the coordinator to start');
  if (child.exitCode !== null) throw new Error(`coordinator exited ${child.exitCode}:\n${out}`);
  return child;
}

interface RunView {
  id: string;
  state: string;
  version: number;
  accuracy: number | null;
}

async function runView(port: number): Promise<RunView> {
  const res = await fetch(`http://127.0.0.1:${port}/api/runs`);
  return (await res.json()).runs[0];
}

function checkpointFiles(runId: string): string[] {
  return readdirSync(join(dataDir, 'checkpoints', runId)).filter((f) => f.endsWith('.safetensors'));
}

test('SIGKILL mid-run, restart on the same data dir: the run resumes from its last checkpoint', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const first = await startCoordinatorProcess(port);
  workers.push(startCpuWorker(url), startCpuWorker(url));

  // The default run (checkpoints every 50 rounds), never done: kill it between two checkpoints.
  let view = await runView(port);
  const deadline = Date.now() + 90_000;
  while (view.version < 125 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    view = await runView(port);
  }
  expect(view.version).toBeGreaterThanOrEqual(125);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const killedAt = view.version;
  const accuracyAtKill = view.accuracy!;

  // No checkpoint is half-written: every file parses, with all its tensors.
  const files = checkpointFiles(view.id);
  expect(files.length).toBeGreaterThanOrEqual(2);
  for (const f of files) {
    const parsed = decodeSafetensors(readFileSync(join(dataDir, 'checkpoints', view.id, f)));
    expect(parsed.tensors.get('0.weight')?.shape).toEqual([128, 784]);
    expect(Number(parsed.metadata.version)).toBe(Number(f.slice(1, 9)));
  }
  const lastCheckpoint = Math.max(...files.map((f) => Number(f.slice(1, 9))));

  await startCoordinatorProcess(port);
  const resumed = await runView(port);
  expect(resumed.id).toBe(view.id);
  expect(resumed.state).toBe('running');
  expect(resumed.version).toBeGreaterThanOrEqual(lastCheckpoint);
  expect(killedAt - lastCheckpoint).toBeLessThanOrEqual(50);

  // The workers reconnect by themselves and training goes on past where it was killed.
  let after = resumed;
  const until = Date.now() + 120_000;
  while (!(after.version > killedAt + 30 && (after.accuracy ?? 0) > accuracyAtKill) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    after = await runView(port);
  }
  expect(after.version).toBeGreaterThan(killedAt + 30);
  expect(after.accuracy).toBeGreaterThan(accuracyAtKill);
  const events = (await (await fetch(`${url}/api/runs/${view.id}`)).json()) as { counters: { rejected: number } };
  expect(events.counters.rejected).toBe(0);
}, 300_000);
