// Vite builds the pages (client/pages/*.html) and Vitest runs three projects: `node` (CPU
// reference, data, server), `chromium` (node tests that open Chromium tabs, one file at a time)
// and `browser` (WGSL kernels and the executor in real Chromium with WebGPU; SwiftShader where
// there is no GPU).
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumLaunchOptions } from './server/chromium.ts';
import { crowdtrainDevData } from './server/dev-plugin.ts';

// Vitest 5's reporter calls Map.groupBy (Node 21+) when it prints failures; Node 20 lacks it.
if (typeof (Map as { groupBy?: unknown }).groupBy !== 'function') {
  (Map as unknown as { groupBy: <K, V>(items: Iterable<V>, key: (v: V, i: number) => K) => Map<K, V[]> }).groupBy = (items, key) => {
    const out = new Map();
    let i = 0;
    for (const item of items) {
      const k = key(item, i++);
      if (!out.has(k)) out.set(k, []);
      out.get(k).push(item);
    }
    return out;
  };
}

const root = import.meta.dirname;
const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? resolve(root, 'data'));
const pages = resolve(root, 'client/pages');

/** Node tests that open Chromium tabs (coordinator, pages and workers end to end). */
const CHROMIUM_TESTS = ['admin-page', 'board', 'e2e-contributors', 'e2e-local', 'e2e-models', 'e2e-pipeline', 'e2e-spot-checks', 'e2e-sweep', 'https', 'nickname-page', 'no-webgpu-tab', 'node-worker', 'web-hardening'].map((f) => `test/${f}.test.ts`);

export default defineConfig({
  root: pages,
  publicDir: false,
  // Vite's deps cache beside the project's own node_modules, not under the pages' sources.
  cacheDir: resolve(root, 'node_modules/.vite'),
  plugins: [crowdtrainDevData(dataDir)],
  server: { host: '127.0.0.1', fs: { allow: [root] } },
  build: {
    outDir: resolve(root, 'dist/pages'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: { index: resolve(pages, 'index.html'), train: resolve(pages, 'train.html'), admin: resolve(pages, 'admin.html'), board: resolve(pages, 'board.html') },
    },
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          root,
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.browser.test.ts', ...CHROMIUM_TESTS],
          environment: 'node',
          // Coordinator tests run real rounds with real workers: seconds, not milliseconds.
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'chromium',
          root,
          include: CHROMIUM_TESTS,
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // One file at a time: their tabs compute on SwiftShader, which takes every core it finds;
          // three such files at once on 2 cores starved a WebGPU tab past its test's wait.
          fileParallelism: false,
          // A WebGPU tab on SwiftShader used to stop folding results now and then on CI's busy 2
          // cores (about one run in two, a different test each time; never seen alone). The likely
          // cause, fixed: test processes rebuilt dist/pages (emptying it) while others served it.
          // Three whole runs since, with no retry, had no such failure; one retry stays as a guard,
          // and a stalled tab's test prints what each tab and the coordinator were doing.
          retry: 1,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          root,
          include: ['test/**/*.browser.test.ts'],
          // SwiftShader runs compute on the CPU: a training test takes minutes there.
          testTimeout: 600_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({ launchOptions: chromiumLaunchOptions() }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
