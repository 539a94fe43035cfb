// Uploading a dataset over HTTP (admin only), naming it in a run spec, and training on it;
// a text upload, named in a spec with its context.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { createRng } from '../shared/rng.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

const TOKEN = 'upload-test-token';
let coord: TestCoordinator;
const workers: WorkerClient[] = [];
beforeAll(async () => {
  coord = await startCoordinator({ adminToken: TOKEN, defaultRun: false });
});
afterAll(async () => {
  for (const w of workers) w.stop();
  await coord.close();
});

/** Two separable blobs in 4 features, as CSV with a label column. */
function blobsCsv(rows: number): string {
  const rng = createRng(3);
  const lines = ['f1,f2,f3,f4,label'];
  for (let i = 0; i < rows; i++) {
    const label = i % 2;
    const centre = label ? 200 : 50;
    lines.push([0, 1, 2, 3].map(() => Math.round(centre + rng.uniform(-40, 40))).join(',') + `,${label}`);
  }
  return `${lines.join('\n')}\n`;
}

function upload(name: string, csv: string, token?: string) {
  const form = new FormData();
  form.append('name', name);
  form.append('file', new Blob([csv], { type: 'text/csv' }), `${name}.csv`);
  return fetch(`${coord.url}/api/datasets`, { method: 'POST', body: form, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

test('upload refuses without the admin token', async () => {
  const res = await upload('blobs', blobsCsv(100));
  expect(res.status).toBe(401);
});

test('a bad CSV gets an error naming the line and column', async () => {
  const rows = Array.from({ length: 25 }, (_, i) => (i === 1 ? '1,x,1' : `${i},2,${i % 2}`));
  const res = await upload('broken', `a,b,label\n${rows.join('\n')}\n`, TOKEN);
  expect(res.status).toBe(400);
  expect((await res.json()).message).toMatch(/line 3, column 2/);
});

test('an uploaded CSV can be named in a spec and trained on', async () => {
  const res = await upload('blobs', blobsCsv(500), TOKEN);
  expect(res.status).toBe(201);
  expect((await res.json()).dataset).toMatchObject({ name: 'blobs', features: 4, classes: 2, trainCount: 400, testCount: 100 });
  const listed = await (await fetch(`${coord.url}/api/datasets`)).json();
  expect(listed.datasets.map((d: { name: string }) => d.name)).toEqual(['mnist', 'mnist-10k', 'fashion-mnist', 'moby-dick', 'blobs']);

  const wrong = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'dataset: blobs\nmodel: { layers: [784, 8, 10] }\n' });
  expect(wrong.status).toBe(400);
  expect((await wrong.json()).message).toMatch(/blobs has 4 features, so model.layers\[0\] must be 4/);

  const spec = 'name: blobs-run\ndataset: blobs\nmodel: { layers: [4, 8, 2] }\noptimizer: { kind: adam, lr: 0.01 }\nbatchPerTask: 32\nevalEvery: 5\nstop: { targetAccuracy: 0.95 }\n';
  const created = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: spec });
  expect(created.status).toBe(201);
  const { run } = await created.json();
  workers.push(startCpuWorker(coord.url));
  const live = coord.app.crowdtrain.scheduler.runs.get(run.id)!;
  await waitFor(() => live.state === 'completed', 60_000, 'the blobs run to reach 0.95');
  expect(live.accuracy).toBeGreaterThanOrEqual(0.95);
});

function uploadText(name: string, body: BlobPart, filename: string, type = 'text/plain') {
  const form = new FormData();
  form.append('name', name);
  form.append('file', new Blob([body], { type }), filename);
  return fetch(`${coord.url}/api/datasets`, { method: 'POST', body: form, headers: { authorization: `Bearer ${TOKEN}` } });
}

test('a text uploads as a character corpus: listed, its windows fetched, and named in a spec with a context', async () => {
  const text = 'It is not down in any map; true places never are.\n'.repeat(40);
  const res = await uploadText('queequeg', text, 'queequeg.txt');
  expect(res.status).toBe(201);
  const vocabSize = new Set(text).size;
  expect((await res.json()).dataset).toMatchObject({ name: 'queequeg', kind: 'text', format: 'text', vocabSize, characters: { train: 1800, test: 200 } });
  const listed = (await (await fetch(`${coord.url}/api/datasets`)).json()).datasets as { name: string; kind: string }[];
  expect(listed.find((d) => d.name === 'queequeg')?.kind).toBe('text');

  const index = await (await fetch(`${coord.url}/api/datasets/queequeg%4032`)).json();
  expect(index).toMatchObject({ name: 'queequeg@32', splits: { train: { count: Math.floor(1799 / 32) }, test: { count: Math.floor(199 / 32) } } });
  expect(index.vocab.join('')).toBe([...new Set(text)].sort().join(''));
  const shard = await fetch(`${coord.url}${index.shards[0].url}`);
  expect(shard.status).toBe(200);
  expect(createHash('sha256').update(new Uint8Array(await shard.arrayBuffer())).digest('hex')).toBe(index.shards[0].sha256);

  // The spec's context picks the windows; a text cannot be modelled by the mlp form.
  const mlp = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'dataset: queequeg\ncontext: 32\nmodel: { layers: [32, 8, 10] }\n' });
  expect(mlp.status).toBe(400);
  expect((await mlp.json()).message).toMatch(/queequeg@32 is a text/);
  const long = await fetch(`${coord.url}/api/runs`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body: 'dataset: queequeg\ncontext: 512\nmodel: { layers: [32, 8, 10] }\n' });
  expect(long.status).toBe(400);
  expect(JSON.stringify(await long.json())).toMatch(/queequeg has 1800 training and 200 validation characters: too few for one window of 512/);
});

test('a text that is not UTF-8 is refused with the byte offset', async () => {
  const bytes = new Uint8Array([...new TextEncoder().encode('x'.repeat(800)), 0xe9, 0x74, 0xe9]);
  const res = await uploadText('latin1', bytes, 'latin1.txt');
  expect(res.status).toBe(400);
  expect((await res.json()).message).toMatch(/latin1\.txt: not UTF-8 text: the byte at offset 800 \(line 1\), 0xe9/);
  const short = await uploadText('short', 'too short', 'notes', 'text/plain');
  expect((await short.json()).message).toMatch(/notes: 9 characters, too short for a window/);
});
