// Vite builds the pages (client/pages/*.html) and Vitest runs two projects:
// `node` (CPU reference, data, server) and `browser` (WGSL kernels and the executor in real
// Chromium with WebGPU; SwiftShader where there is no GPU).
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumLaunchOptions } from './server/chromium.ts';
import { crowdtrainDevData } from './server/dev-plugin.ts';

const root = import.meta.dirname;
const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? resolve(root, 'data'));
const pages = resolve(root, 'client/pages');

export default defineConfig({
  root: pages,
  publicDir: false,
  plugins: [crowdtrainDevData(dataDir)],
  server: { host: '127.0.0.1', fs: { allow: [root] } },
  build: {
    outDir: resolve(root, 'dist/pages'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: { train: resolve(pages, 'train.html') },
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
          exclude: ['test/**/*.browser.test.ts'],
          environment: 'node',
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
