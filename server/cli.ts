// `npm start`: builds the pages if needed and starts the coordinator.
// Environment: PORT (3000), HOST (127.0.0.1 unless set), CROWDTRAIN_DATA_DIR (./data).
import { resolve } from 'node:path';
import { buildApp } from './app.ts';
import { buildPagesIfStale } from './build-pages.ts';

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? 'data');
const pagesDir = resolve(root, 'dist/pages');


if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer in [0, 65535], got ${process.env.PORT}`);
  process.exit(2);
}

// CROWDTRAIN_SKIP_BUILD=1 serves the pages as they are (tests that need no pages use it).
if (process.env.CROWDTRAIN_SKIP_BUILD !== '1') await buildPagesIfStale(root, pagesDir, (m) => console.log(`crowdtrain: ${m}`));
const app = await buildApp({
  dataDir,
  pagesDir,
  logger: { level: process.env.LOG_LEVEL ?? 'warn' },
  adminToken: process.env.CROWDTRAIN_ADMIN_TOKEN || undefined,
  onAdminTokenCreated: (token) =>
    console.log(`crowdtrain: admin token (shown once, stored hashed; set CROWDTRAIN_ADMIN_TOKEN to choose your own):\n\n    ${token}\n`),
});
try {
  await app.listen({ port, host });
} catch (err) {
  console.error(`crowdtrain: could not listen on ${host}:${port}: ${(err as Error).message}`);
  process.exit(1);
}
const addr = app.server.address();
const shown = typeof addr === 'object' && addr ? `http://${host === '0.0.0.0' ? 'localhost' : host}:${addr.port}` : `http://${host}:${port}`;
console.log(`crowdtrain is up: contribute at ${shown}/ , admin at ${shown}/admin (data in ${dataDir})`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void app.close().then(() => process.exit(0));
  });
}
