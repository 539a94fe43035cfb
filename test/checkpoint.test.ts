// Checkpoints and the store: safetensors files that round-trip exactly, that a small independent
// reader (written here, from the format's description) parses, and the SQLite schema.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CheckpointMismatchError, encodeCheckpoint, INPUT_PREPROCESSING, restoreCheckpoint, saveCheckpoint } from '../server/checkpoint.ts';
import { Run } from '../server/run.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { parseRunSpec } from '../shared/run-spec.ts';
import { createRng } from '../shared/rng.ts';
import { readSafetensors } from './helpers/safetensors-reader.ts';

const dataset = { name: 'mnist', features: 784, classes: 10, trainCount: 8000, shards: [] };

function trainedRun(kind: 'adam' | 'momentum' | 'sgd' = 'adam', layers = [784, 32, 16, 10]): Run {
  const run = new Run(parseRunSpec({ model: { layers }, optimizer: { kind, lr: 0.01 }, seed: 9 }), dataset);
  const rng = createRng(4);
  for (let t = 0; t < 3; t++) {
    const g = new Float32Array(run.paramCount).map(() => rng.uniform(-1, 1));
    run.applyGradient(g, 64);
  }
  run.cursor.next(1234);
  run.loss = 0.5;
  run.accuracy = 0.75;
  return run;
}

describe('checkpoints', () => {
  test('round-trip exactly: parameters, optimizer state, version, data position', () => {
    const run = trainedRun();
    const copy = new Run(run.spec, dataset, run.id);
    restoreCheckpoint(copy, encodeCheckpoint(run));
    expect(copy.version).toBe(3);
    expect(copy.samples).toBe(192);
    expect(Buffer.from(copy.params.buffer).equals(Buffer.from(run.params.buffer))).toBe(true);
    expect(Buffer.from(copy.optimizerState.m!.buffer).equals(Buffer.from(run.optimizerState.m!.buffer))).toBe(true);
    expect(Buffer.from(copy.optimizerState.v!.buffer).equals(Buffer.from(run.optimizerState.v!.buffer))).toBe(true);
    expect([copy.cursor.epoch, copy.cursor.position]).toEqual([0, 1234]);
    expect([...copy.cursor.next(5)]).toEqual([...run.cursor.next(5)]);
    expect([copy.loss, copy.accuracy]).toEqual([0.5, 0.75]);
  });

  test('an independent reader finds PyTorch names and layouts, optimizer state apart, and metadata', () => {
    const run = trainedRun('momentum');
    const file = readSafetensors(encodeCheckpoint(run));
    expect((8 + file.headerLength) % 8).toBe(0);
    expect(Object.keys(file.tensors).filter((k) => !k.startsWith('optimizer.'))).toEqual(['0.weight', '0.bias', '2.weight', '2.bias', '4.weight', '4.bias']);
    expect(file.tensors['0.weight'].shape).toEqual([32, 784]);
    expect(file.tensors['2.weight'].shape).toEqual([16, 32]);
    expect(file.tensors['4.bias'].shape).toEqual([10]);
    // Weight [out, in] row-major: element (o, i) of layer 0 is params[o * 784 + i].
    expect(file.tensors['0.weight'].values[5 * 784 + 7]).toBe(run.params[5 * 784 + 7]);
    expect(file.tensors['2.bias'].values[3]).toBe(run.params[32 * 784 + 32 + 16 * 32 + 3]);
    expect(Object.keys(file.tensors).filter((k) => k.startsWith('optimizer.'))).toEqual(['0.weight', '0.bias', '2.weight', '2.bias', '4.weight', '4.bias'].map((n) => `optimizer.momentum_buffer.${n}`));
    // Offsets are contiguous and cover the body exactly.
    const spans = Object.values<any>(file.header).filter((e) => e.data_offsets).map((e) => e.data_offsets as [number, number]).sort((a, b) => a[0] - b[0]);
    spans.forEach(([a], i) => expect(a).toBe(i === 0 ? 0 : spans[i - 1][1]));
    expect(file.metadata).toMatchObject({ run_id: run.id, version: '3', input_preprocessing: INPUT_PREPROCESSING, format: 'crowdtrain-checkpoint-v1' });
    expect(JSON.parse(file.metadata.spec).optimizer.kind).toBe('momentum');
    expect(JSON.parse(file.metadata.model).torch).toBe('nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))');
  });

  test('a checkpoint of another spec is refused', () => {
    const run = trainedRun();
    const other = new Run(parseRunSpec({ model: { layers: [784, 32, 16, 10] }, optimizer: { kind: 'adam', lr: 0.02 } }), dataset);
    expect(() => restoreCheckpoint(other, encodeCheckpoint(run))).toThrow(CheckpointMismatchError);
  });

  test('saved atomically under the data dir, no temporary file left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-ckpt-'));
    const run = trainedRun('sgd', [784, 10]);
    const rec = saveCheckpoint(run, dir);
    run.applyGradient(new Float32Array(run.paramCount), 1);
    const rec2 = saveCheckpoint(run, dir);
    const files = readdirSync(join(dir, 'checkpoints', run.id));
    expect(files).toEqual(['v00000003.safetensors', 'v00000004.safetensors']);
    expect(readFileSync(join(dir, rec2.path)).byteLength).toBe(rec2.bytes);
    expect(existsSync(join(dir, rec.path))).toBe(true);
  });
});

describe('SQLite store', () => {
  test('schema migrations, WAL mode, runs, metrics, events, workers, checkpoints, settings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crowdtrain-store-'));
    const path = join(dir, 'crowdtrain.db');
    const store = new SqliteStore(path);
    expect(store.schemaVersion).toBe(4);
    const run = trainedRun();
    store.saveRun(run.record());
    store.appendMetric(run.id, { version: 1, time: 1, loss: 2, accuracy: null, evalLoss: null, samplesPerSec: 10, workers: 1, samples: 64 });
    store.appendMetric(run.id, { version: 2, time: 2, loss: 1, accuracy: null, evalLoss: null, samplesPerSec: 10, workers: 1, samples: 128 });
    store.appendEvent({ runId: run.id, time: 3, kind: 'join', message: 'worker w1 joined', workerId: 'w1' });
    store.saveWorker({ runId: run.id, workerId: 'w1', nickname: null, backend: 'cpu', adapter: '', tasksDone: 2, samples: 128, rejected: 0, firstSeen: 1, lastSeen: 3 });
    store.addCheckpoint({ runId: run.id, version: 2, path: 'x', bytes: 1, sha256: 'h', time: 4 });
    store.setSetting('admin.tokenHash', 'abc');
    store.close();

    const again = new SqliteStore(path);
    expect(again.listRuns().map((r) => [r.id, r.state, r.version, r.spec.optimizer.kind])).toEqual([[run.id, 'running', 3, 'adam']]);
    // An evaluation that arrives after its round's point was written lands on that point.
    again.setMetricEvaluation(run.id, 2, 0.5, 1.25);
    expect(again.metrics(run.id).map((m) => [m.accuracy, m.evalLoss])).toEqual([[null, null], [0.5, 1.25]]);
    again.truncateMetrics(run.id, 1);
    expect(again.metrics(run.id)).toHaveLength(1);
    expect(again.events(run.id)[0]).toMatchObject({ kind: 'join', workerId: 'w1' });
    expect(again.workers(run.id)[0].tasksDone).toBe(2);
    expect(again.latestCheckpoint(run.id)?.version).toBe(2);
    expect(again.getSetting('admin.tokenHash')).toBe('abc');
    expect(readdirSync(dir)).toContain('crowdtrain.db-wal');
    again.deleteRun(run.id);
    expect(again.listRuns()).toEqual([]);
    expect(again.metrics(run.id)).toEqual([]);
    again.close();
  });
});
