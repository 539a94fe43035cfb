// POST /api/specs/preview: what the admin page shows before a run is created (each layer's output
// shape and parameter count), the error naming the layer and the shape when a layer list does
// not fit the dataset, and the same admin credential as POST /api/runs; then the admin page in
// real Chromium drawing that table as a spec is pasted, and the issue for a wrong one.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import type { SpecPreview } from '../server/routes/admin.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { sharedDataDir } from './helpers/coordinator.ts';
import { startAdminBrowser, type AdminBrowser } from './helpers/admin-browser.ts';

const TOKEN = 'test-admin-token-spec-preview-0123';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApp({ dataDir: sharedDataDir, store: new SqliteStore(':memory:'), adminToken: TOKEN, defaultRun: false });
  await app.ready();
});
afterAll(() => app.close());

const preview = (payload: string | object, headers: Record<string, string> = auth) =>
  app.inject({ method: 'POST', url: '/api/specs/preview', headers: typeof payload === 'string' ? { ...headers, 'content-type': 'application/yaml' } : headers, payload });

describe('POST /api/specs/preview', () => {
  test('the CNN example: every layer with its output shape and parameters, and nothing created', async () => {
    const res = await preview(readFileSync('examples/mnist-cnn.yaml', 'utf8'));
    expect(res.statusCode).toBe(200);
    const body = res.json<SpecPreview>();
    expect(body.inputShape).toEqual([1, 28, 28]);
    expect(body.layers.map((l) => [l.kind, l.outShape, l.params])).toEqual([
      ['conv2d', [8, 24, 24], 208],
      ['relu', [8, 24, 24], 0],
      ['maxpool2d', [8, 12, 12], 0],
      ['conv2d', [16, 8, 8], 3216],
      ['relu', [16, 8, 8], 0],
      ['maxpool2d', [16, 4, 4], 0],
      ['flatten', [256], 0],
      ['dense', [10], 2570],
    ]);
    expect(body.layers.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(body.paramCount).toBe(5994);
    expect(body.line).toContain('5,994 parameters');
    expect(app.crowdtrain.scheduler.runs.size).toBe(0);
  });

  test('the mlp form as JSON previews as its dense layers', async () => {
    const res = await preview({ model: { kind: 'mlp', layers: [784, 128, 10], activation: 'relu' } });
    expect(res.statusCode).toBe(200);
    const body = res.json<SpecPreview>();
    expect(body.layers.map((l) => [l.kind, l.outShape, l.params])).toEqual([
      ['dense', [128], 100480],
      ['relu', [128], 0],
      ['dense', [10], 1290],
    ]);
    expect(body.paramCount).toBe(101770);
  });

  test('a dense layer on an image is refused, naming the layer and the shape it got', async () => {
    const res = await preview('name: bad\nmodel:\n  layers:\n    - { kind: conv2d, out: 8, kernel: 5 }\n    - { kind: dense, out: 10 }\n');
    expect(res.statusCode).toBe(400);
    const body = res.json<{ error: string; issues: { path: string; message: string }[] }>();
    expect(body.error).toBe('invalid_spec');
    expect(body.issues).toHaveLength(1);
    expect(body.issues[0].path).toBe('model.layers.1');
    expect(body.issues[0].message).toMatch(/^layer 1 \(dense\) on input \[8, 24, 24\]: /);
  });

  test('a model that does not end in the dataset\'s classes, and a YAML syntax error, are refused', async () => {
    const wrongEnd = await preview({ model: { layers: [{ kind: 'flatten' }, { kind: 'dense', out: 7 }] } });
    expect(wrongEnd.statusCode).toBe(400);
    expect(wrongEnd.json().issues[0].message).toContain('[10] logits');
    const syntax = await preview('model: { layers: [\n');
    expect(syntax.statusCode).toBe(400);
    expect(syntax.json().issues[0].path).toBe('(yaml)');
  });

  test('needs the admin credential, like POST /api/runs', async () => {
    const spec = readFileSync('examples/mnist-cnn.yaml', 'utf8');
    expect((await preview(spec, {})).statusCode).toBe(401);
    expect((await preview(spec, { authorization: 'Bearer wrong-token-wrong-token-wrong' })).statusCode).toBe(401);
  });
});

describe('the admin page previews the pasted spec', () => {
  let admin: AdminBrowser;
  let coord: AdminBrowser['coord'];

  beforeAll(async () => {
    admin = await startAdminBrowser(TOKEN);
    coord = admin.coord;
  }, 240_000);
  afterAll(async () => {
    await admin?.close();
  });

  test('a table of shapes for the CNN, the layer and shape for a wrong list, and no run created', async () => {
    const { page, errors } = await admin.login({ width: 1280, height: 900 });

    await page.locator('#yaml').fill(readFileSync('examples/mnist-cnn.yaml', 'utf8'));
    const rows = page.locator('#spec-preview-layers tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(8);
    expect(await rows.nth(0).locator('td').allTextContents()).toEqual(['0', 'conv2d', '[8, 24, 24]', '208']);
    expect(await rows.nth(7).locator('td').allTextContents()).toEqual(['7', 'dense', '[10]', '2,570']);
    expect(await page.locator('#spec-preview-summary').textContent()).toContain('5,994 parameters');

    await page.locator('#yaml').fill('name: wrong\nmodel:\n  layers:\n    - { kind: conv2d, out: 8, kernel: 5 }\n    - { kind: dense, out: 10 }\n');
    await expect.poll(() => page.locator('#yaml-errors').textContent(), { timeout: 10_000 }).toMatch(/model\.layers\.1.*layer 1 \(dense\) on input \[8, 24, 24\]/);
    expect(await page.locator('#spec-preview').isVisible()).toBe(false);
    expect(coord.app.crowdtrain.scheduler.runs.size).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
