// The admin page's teacher controls in real Chromium: the Classroom preset fills the create form
// with examples/classroom.yaml's recipe, the run created from the form has that spec, and each run
// has an "Open board" link to its projector board in a new tab.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { startAdminBrowser, type AdminBrowser } from './helpers/admin-browser.ts';

const root = resolve(import.meta.dirname, '..');
const TOKEN = 'admin-classroom-test-token-0123456789';
let admin: AdminBrowser;
let coord: AdminBrowser['coord'];

beforeAll(async () => {
  admin = await startAdminBrowser(TOKEN);
  coord = admin.coord;
}, 180_000);

afterAll(async () => {
  await admin?.close();
});

test('the Classroom preset creates the classroom recipe from the form, and each run links to its board', async () => {
  const { page, errors } = await admin.login();

  await page.getByRole('button', { name: 'Classroom preset' }).click();
  const field = (name: string) => page.locator(`#create-form [name="${name}"]`).inputValue();
  expect(await field('name')).toBe('classroom');
  expect(await field('hidden')).toBe('32');
  expect(await field('targetAccuracy')).toBe('0.92');
  expect(await field('roundDeadlineMs')).toBe('3000');
  expect(await page.locator('#yaml').inputValue()).toContain('name: classroom');

  await page.locator('#create-form-submit').click();
  const row = page.locator('#runs tbody tr', { hasText: 'classroom' });
  await row.waitFor({ timeout: 10_000 });
  const runId = (await row.getAttribute('data-run-id'))!;
  const run = coord.app.crowdtrain.scheduler.runs.get(runId)!;
  // Created from the form, the run has exactly the example file's recipe.
  const recipe = parseRunSpecText(readFileSync(resolve(root, 'examples/classroom.yaml'), 'utf8'));
  expect(run.spec).toEqual(recipe);
  expect(run.spec.model.layers).toEqual([784, 32, 10]);
  expect(run.spec.stop.targetAccuracy).toBe(0.92);

  // One click to the board: in the runs table and in the run's detail, each in a new tab.
  for (const link of [row.getByRole('link', { name: 'Open board' }), page.locator('#board-link')]) {
    expect(await link.getAttribute('href')).toBe(`/board/${runId}`);
    expect(await link.getAttribute('target')).toBe('_blank');
  }
  await expect.poll(() => page.locator('#detail-name').textContent()).toBe('classroom');
  const [popup] = await Promise.all([page.waitForEvent('popup'), row.getByRole('link', { name: 'Open board' }).click()]);
  expect(new URL(popup.url()).pathname).toBe(`/board/${runId}`);
  // Clicking the link does not change the selected run or leave the admin page.
  expect(new URL(page.url()).pathname).toBe('/admin');
  expect(errors).toEqual([]);
  await page.close();
}, 90_000);
