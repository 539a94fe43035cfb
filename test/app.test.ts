import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { decodeDataset } from '../shared/dataset.ts';

const app = await buildApp({ dataDir: mkdtempSync(join(tmpdir(), 'crowdtrain-app-')) });
afterAll(() => app.close());

describe('coordinator HTTP', () => {
  test('healthz', async () => {
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  test('MNIST splits are served at content-hashed, immutable URLs', async () => {
    const index = (await app.inject('/api/datasets/mnist-10k')).json();
    expect(Object.keys(index.splits).sort()).toEqual(['test', 'train']);
    const res = await app.inject(index.splits.test.url);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toContain('immutable');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const ds = decodeDataset(new Uint8Array(res.rawPayload));
    expect(ds.count).toBe(2000);
    expect(index.splits.test.url).toContain(index.splits.test.sha256);
  });

  test('unknown datasets and hashes get a clear 404', async () => {
    const a = await app.inject('/api/datasets/cifar');
    expect(a.statusCode).toBe(404);
    expect(a.json().message).toMatch(/no dataset named "cifar"/);
    const b = await app.inject('/api/datasets/mnist-10k/deadbeef');
    expect(b.statusCode).toBe(404);
  });
});
