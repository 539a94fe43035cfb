// Serves the built-in datasets over HTTP, framework-neutral so that the coordinator (Fastify)
// and the dev/test server (Vite) answer the same URLs the same way.
//   GET /api/datasets/mnist           -> JSON index: each split's count, features, classes, url
//   GET /api/datasets/mnist/<sha256>  -> a split's or a shard's bytes, immutable (the URL is its hash)
import { encodedMnist, encodedMnistShards } from './mnist.ts';
import type { ShardInfo } from '../../shared/protocol.ts';

export const DATASET_PREFIX = '/api/datasets/';

export interface DatasetIndex {
  name: string;
  splits: Record<'train' | 'test', { url: string; bytes: number; sha256: string }>;
  /** The train split in contiguous shards: what workers fetch, each once. */
  shards: ShardInfo[];
}

/** Shard descriptors of the built-in MNIST train split. */
export function mnistShardInfo(dataDir: string): ShardInfo[] {
  return encodedMnistShards(dataDir).map((s) => ({ url: `${DATASET_PREFIX}mnist/${s.hash}`, sha256: s.hash, start: s.start, count: s.count, bytes: s.bytes.byteLength }));
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export function jsonAnswer(status: number, value: unknown, cache = 'no-cache'): HttpAnswer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': cache }, body: JSON.stringify(value) };
}

/** Bytes served at a URL that holds their sha256: they never change, so caches keep them for good. */
export function immutableAnswer(sha256: string, bytes: Uint8Array): HttpAnswer {
  return {
    status: 200,
    headers: { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=31536000, immutable', etag: `"${sha256}"` },
    body: bytes,
  };
}

/** Answers a GET under DATASET_PREFIX, or returns undefined for a path it does not own. */
export function answerDatasetRequest(dataDir: string, path: string): HttpAnswer | undefined {
  if (!path.startsWith(DATASET_PREFIX)) return undefined;
  const parts = path.slice(DATASET_PREFIX.length).split('?')[0].split('/').filter(Boolean);
  if (parts[0] !== 'mnist') return jsonAnswer(404, { error: 'unknown_dataset', message: `no dataset named "${parts[0] ?? ''}"; built in: mnist` });
  const splits = encodedMnist(dataDir);
  if (parts.length === 1) {
    const index: DatasetIndex = {
      name: 'mnist',
      splits: Object.fromEntries(
        splits.map((s) => [s.name, { url: `${DATASET_PREFIX}mnist/${s.hash}`, bytes: s.bytes.byteLength, sha256: s.hash }]),
      ) as DatasetIndex['splits'],
      shards: mnistShardInfo(dataDir),
    };
    return jsonAnswer(200, index);
  }
  const found = [...splits, ...encodedMnistShards(dataDir)].find((s) => s.hash === parts[1]);
  if (!found || parts.length > 2) return jsonAnswer(404, { error: 'unknown_shard', message: `no mnist data at ${path}` });
  return immutableAnswer(found.hash, found.bytes);
}
