// A worker_threads thread whose entry is a TypeScript file: the thread loads it through tsx's
// module API (resolved from this file, so any working directory does), the way
// bin/crowdtrain.mjs loads the CLI: Node 20 does not apply a loader given as the thread's
// `--import` to its entry file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

let tsxApi: string | undefined;

function tsxModuleApi(): string {
  if (tsxApi) return tsxApi;
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  tsxApi = pathToFileURL(join(dirname(manifest), exports['./esm/api'].import.default)).href;
  return tsxApi;
}

/** Starts a thread running `entry` (a file: URL of a .ts module). */
export function startTsThread(entry: URL, opts: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const href = entry.href;
  const boot = `import(${JSON.stringify(tsxModuleApi())}).then((tsx) => tsx.tsImport(${JSON.stringify(href)}, ${JSON.stringify(href)}));`;
  return new Worker(boot, { ...opts, eval: true });
}
