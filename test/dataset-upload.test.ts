// Uploading a dataset over HTTP (admin only), naming it in a run spec, and training on it.
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
  expect(listed.datasets.map((d: { name: string }) => d.name).sort()).toEqual(['blobs', 'mnist']);

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
