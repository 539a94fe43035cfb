// `npm start`: builds the pages if needed and starts the coordinator.
// Environment: PORT (3000), HOST (127.0.0.1 unless set), CROWDTRAIN_DATA_DIR (./data),
// CROWDTRAIN_DEFAULT_SPEC (a YAML or JSON run spec file for the run created when the store holds
// none; unset: the built-in MNIST run).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RunSpecError, type RunSpec } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { buildApp } from './app.ts';
import { buildPagesIfStale } from './build-pages.ts';

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? 'data');
const pagesDir = resolve(root, 'dist/pages');
const specFile = process.env.CROWDTRAIN_DEFAULT_SPEC || undefined;

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer in [0, 65535], got ${process.env.PORT}`);
  process.exit(2);
}

/** The spec file's run, or exits with one line naming the file and what is wrong with it. */
function readDefaultSpec(file: string): RunSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${file}: cannot read it: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    process.exit(2);
  }
  try {
    return parseRunSpecText(text);
  } catch (err) {
    if (!(err instanceof RunSpecError)) throw err;
    console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${file} is not a valid run spec: ${err.message}`);
    process.exit(2);
  }
}
const defaultRun = specFile ? readDefaultSpec(resolve(specFile)) : undefined;

// Worker sockets: at most this many from one address (a classroom behind one NAT shares one),
// and the origins, besides the coordinator's own, whose pages may connect workers.
const capText = process.env.CROWDTRAIN_MAX_WORKERS_PER_ADDRESS;
const maxWorkersPerAddress = capText === undefined || capText === '' ? undefined : Number(capText);
if (maxWorkersPerAddress !== undefined && !(Number.isInteger(maxWorkersPerAddress) && maxWorkersPerAddress >= 1)) {
  console.error(`crowdtrain: CROWDTRAIN_MAX_WORKERS_PER_ADDRESS must be an integer >= 1, got ${capText}`);
  process.exit(2);
}
const workerOrigins = (process.env.CROWDTRAIN_WORKER_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);

// CROWDTRAIN_SKIP_BUILD=1 serves the pages as they are (tests that need no pages use it).
if (process.env.CROWDTRAIN_SKIP_BUILD !== '1') await buildPagesIfStale(root, pagesDir, (m) => console.log(`crowdtrain: ${m}`));
let app: Awaited<ReturnType<typeof buildApp>>;
try {
  app = await buildApp({
    dataDir,
    pagesDir,
    ...(defaultRun ? { defaultRun } : {}),
    ...(maxWorkersPerAddress !== undefined ? { maxWorkersPerAddress } : {}),
    ...(workerOrigins.length ? { workerOrigins } : {}),
    logger: { level: process.env.LOG_LEVEL ?? 'warn' },
    adminToken: process.env.CROWDTRAIN_ADMIN_TOKEN || undefined,
    onAdminTokenCreated: (token) =>
      console.log(`crowdtrain: admin token (shown once, stored hashed; set CROWDTRAIN_ADMIN_TOKEN to choose your own):\n\n    ${token}\n`),
  });
} catch (err) {
  // A spec that parses can still not fit its dataset (an unknown name, the wrong input width).
  if (!(specFile && err instanceof RunSpecError)) throw err;
  console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${resolve(specFile)} does not fit its dataset: ${err.message}`);
  process.exit(2);
}
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
