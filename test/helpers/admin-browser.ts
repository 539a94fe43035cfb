// The admin page in real Chromium for tests: a coordinator serving the built pages with a known
// admin token, one browser, and a logged-in page that records the page's own errors.
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildPagesIfStale } from '../../server/build-pages.ts';
import { chromiumLaunchOptions } from '../../server/chromium.ts';
import { startCoordinator, type TestCoordinator } from './coordinator.ts';

export interface AdminBrowser {
  coord: TestCoordinator;
  browser: Browser;
  /** A new page, logged in; `errors` collects uncaught page errors. */
  login(viewport?: { width: number; height: number }): Promise<{ page: Page; errors: string[] }>;
  close(): Promise<void>;
}

/** @example const admin = await startAdminBrowser(TOKEN); const { page } = await admin.login(); */
export async function startAdminBrowser(token: string): Promise<AdminBrowser> {
  const root = resolve(import.meta.dirname, '../..');
  const pagesDir = resolve(root, 'dist/pages');
  await buildPagesIfStale(root, pagesDir, () => {});
  const coord = await startCoordinator({ pagesDir, defaultRun: false, adminToken: token });
  const browser = await chromium.launch(chromiumLaunchOptions());
  return {
    coord,
    browser,
    async login(viewport = { width: 1280, height: 720 }) {
      const page = await browser.newPage({ viewport });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${coord.url}/admin`);
      await page.locator('#token').fill(token);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => page.locator('#console').isVisible(), { timeout: 10_000 }).toBe(true);
      return { page, errors };
    },
    async close() {
      await browser.close();
      await coord.close();
    },
  };
}
