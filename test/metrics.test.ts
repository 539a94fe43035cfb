// GET /metrics as Prometheus scrapes it: text that parses, workers connected, rounds and samples
// rising while a CPU worker trains, the round-latency histogram filling, and no series shared
// between two coordinators in one process.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { sharedDataDir, startCpuWorker, waitFor } from './helpers/coordinator.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the Prometheus text format (0.0.4): throws on any line it does not know. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleLine = new RegExp(`^(${name})(?:\\{(.*)\\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|NaN|\\+Inf|-Inf))$`);
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      types.set(m[1], m[2]);
      continue;
    }
    if (new RegExp(`^# HELP ${name} .*$`).test(line)) continue;
    m = sampleLine.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    let consumed = 0;
    for (const l of body.matchAll(label)) {
      labels[l[1]] = l[2];
      consumed += l[0].length;
    }
    if (consumed !== body.length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]) && !types.has(family)) throw new Error(`sample ${m[1]} has no # TYPE line`);
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

async function startApp(): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({
    dataDir: sharedDataDir,
    store: new SqliteStore(':memory:'),
    // Fixed task sizes: the samples counter is then 32 a round, whatever the worker's speed.
    defaultRun: { name: 'metrics', model: { layers: [784, 16, 10] }, batchPerTask: 32, sync: { roundDeadlineMs: 3000, minWorkers: 1, taskSizing: 'fixed' }, evalEvery: 5, checkpointEvery: 100_000 },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  return { app, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

describe('GET /metrics', () => {
  let app: FastifyInstance;
  let url: string;
  let runId: string;
  beforeAll(async () => {
    ({ app, url } = await startApp());
    runId = [...app.crowdtrain.scheduler.runs.keys()][0];
  });
  afterAll(() => app.close());

  const scrape = async () => {
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(res.body);
  };

  test('before any worker: parses, with every family typed and zero workers', async () => {
    const { types, samples } = await scrape();
    expect(types.get('crowdtrain_workers_connected')).toBe('gauge');
    expect(types.get('crowdtrain_rounds_total')).toBe('counter');
    expect(types.get('crowdtrain_round_seconds')).toBe('histogram');
    for (const name of ['crowdtrain_results_rejected_total', 'crowdtrain_results_late_total', 'crowdtrain_rounds_timed_out_total', 'crowdtrain_bytes_received_total', 'crowdtrain_bytes_sent_total', 'crowdtrain_samples_total', 'crowdtrain_runs', 'crowdtrain_run_workers', 'crowdtrain_run_samples_per_second']) {
      expect(types.has(name), name).toBe(true);
    }
    expect(value(samples, 'crowdtrain_workers_connected')).toBe(0);
    expect(value(samples, 'crowdtrain_runs', { state: 'running' })).toBe(1);
    expect(value(samples, 'crowdtrain_runs', { state: 'paused' })).toBe(0);
    expect(value(samples, 'crowdtrain_rounds_total', { run: runId })).toBe(0);
    expect(value(samples, 'crowdtrain_run_info', { run: runId, name: 'metrics', state: 'running' })).toBe(1);
  });

  test('while a CPU worker trains: workers connected, rounds, samples and latencies rise', async () => {
    const worker = startCpuWorker(url);
    try {
      await waitFor(() => (app.crowdtrain.scheduler.runs.get(runId)?.version ?? 0) >= 3, 30_000, 'three rounds');
      const a = (await scrape()).samples;
      expect(value(a, 'crowdtrain_workers_connected')).toBe(1);
      expect(value(a, 'crowdtrain_run_workers', { run: runId })).toBe(1);
      const roundsA = value(a, 'crowdtrain_rounds_total', { run: runId });
      expect(roundsA).toBeGreaterThanOrEqual(3);
      expect(value(a, 'crowdtrain_samples_total', { run: runId })).toBe(roundsA * 32);

      await waitFor(() => (app.crowdtrain.scheduler.runs.get(runId)?.version ?? 0) >= roundsA + 3, 30_000, 'three more rounds');
      const b = (await scrape()).samples;
      expect(value(b, 'crowdtrain_rounds_total', { run: runId })).toBeGreaterThan(roundsA);
      expect(value(b, 'crowdtrain_results_folded_total', { run: runId })).toBeGreaterThanOrEqual(roundsA + 3);
      const closed = value(b, 'crowdtrain_round_seconds_count', { run: runId });
      expect(closed).toBeGreaterThanOrEqual(roundsA + 3);
      expect(value(b, 'crowdtrain_round_seconds_bucket', { run: runId, le: '+Inf' })).toBe(closed);
      expect(value(b, 'crowdtrain_round_seconds_sum', { run: runId })).toBeGreaterThan(0);
      expect(value(b, 'crowdtrain_bytes_sent_total')).toBeGreaterThan(0);
      expect(value(b, 'crowdtrain_bytes_received_total')).toBeGreaterThan(0);
      expect(value(b, 'crowdtrain_run_samples_per_second', { run: runId })).toBeGreaterThan(0);
    } finally {
      worker.stop();
    }
    await waitFor(() => app.crowdtrain.scheduler.workers.size === 0, 5000, 'the worker to leave');
    expect(value((await scrape()).samples, 'crowdtrain_workers_connected')).toBe(0);
  });

  test('each app has its own registry: a second coordinator starts from zero', async () => {
    const other = await startApp();
    try {
      const res = await other.app.inject('/metrics');
      const { samples } = parsePrometheus(res.body);
      expect(value(samples, 'crowdtrain_round_seconds_count')).toBe(0);
      expect(samples.some((s) => s.labels.run === runId)).toBe(false);
    } finally {
      await other.app.close();
    }
  });
});
