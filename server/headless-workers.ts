// Headless contributors: Chromium tabs that open the contributor page and press its button as
// a person would. Used by `npm run demo` and the end-to-end tests.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { chromiumLaunchOptions } from './chromium.ts';

export interface HeadlessWorker {
  page: Page;
  context: BrowserContext;
  /** Query string the tab was opened with (e.g. 'backend=webgpu'). */
  query: string;
}

export class HeadlessWorkers {
  readonly tabs: HeadlessWorker[] = [];

  private constructor(
    private readonly browser: Browser,
    private readonly url: string,
  ) {}

  static async launch(url: string): Promise<HeadlessWorkers> {
    return new HeadlessWorkers(await chromium.launch(chromiumLaunchOptions()), url);
  }

  /** Opens a contributor tab and presses Contribute; resolves once it shows it is training. */
  async add(query = '', timeoutMs = 120_000): Promise<HeadlessWorker> {
    // Each tab in its own context: separate storage, like separate laptops.
    const context = await this.browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`[worker tab] ${e.message}`));
    // A lost WebGPU device or a failed task is logged by the page: show it where the tab runs.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) console.error(`[worker tab ${query}] ${m.text().slice(0, 500)}`);
    });
    await page.goto(`${this.url}/${query ? `?${query}` : ''}`);
    await page.getByRole('button', { name: 'Contribute' }).click();
    await page.locator('#status[data-state="training"]').waitFor({ timeout: timeoutMs });
    const tab = { page, context, query };
    this.tabs.push(tab);
    return tab;
  }

  /** Closes a tab as a person closing it would (no goodbye message). */
  async close(tab: HeadlessWorker): Promise<void> {
    this.tabs.splice(this.tabs.indexOf(tab), 1);
    await tab.context.close();
  }

  async text(tab: HeadlessWorker, selector: string): Promise<string> {
    return (await tab.page.locator(selector).textContent()) ?? '';
  }

  /**
   * One line per tab: its state, backend, what it is doing and since when, and what it has done.
   * Printed by tests when a tab seems stuck.
   */
  async describe(): Promise<string> {
    const lines = await Promise.all(
      this.tabs.map(async (t) => {
        try {
          const s = await t.page.evaluate(() => {
            const text = (id: string) => document.getElementById(id)?.textContent ?? '';
            const status = document.getElementById('status');
            return `state ${status?.dataset.state}, ${text('backend')}, doing: ${status?.title || 'nothing'}; ${text('contributed')}; round ${text('round')}`;
          });
          return `tab ${t.query || '(default)'}: ${s}`;
        } catch (err) {
          return `tab ${t.query || '(default)'}: does not answer (${(err as Error).message.split('\n')[0]})`;
        }
      }),
    );
    return lines.join('\n');
  }

  async closeAll(): Promise<void> {
    await this.browser.close();
  }
}
