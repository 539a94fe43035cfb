// The dataset URLs for the dev/test server (Vite, server/dev-plugin.ts): the same registry the
// coordinator uses, one per data dir, so pages fetch data the same way everywhere.
//   GET /api/datasets                -> { datasets: [...] }: every dataset, built in or uploaded
//   GET /api/datasets/<name>         -> JSON index: each split's count, bytes and url, the shards
//   GET /api/datasets/<name>/<sha256> -> a split's or a shard's bytes, immutable (the URL is its hash)
import { DatasetRegistry } from './registry.ts';
import type { HttpAnswer } from './http-answer.ts';

export { DATASET_PREFIX, immutableAnswer, jsonAnswer, type HttpAnswer } from './http-answer.ts';

const registries = new Map<string, DatasetRegistry>();

/** Answers a GET under /api/datasets, or returns undefined for a path it does not own. */
export function answerDatasetRequest(dataDir: string, path: string): HttpAnswer | undefined {
  let registry = registries.get(dataDir);
  if (!registry) {
    registry = new DatasetRegistry(dataDir);
    registries.set(dataDir, registry);
  }
  return registry.answer(path);
}
