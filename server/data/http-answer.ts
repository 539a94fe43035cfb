// HTTP answers for the dataset URLs, framework-neutral so that the coordinator (Fastify) and the
// dev/test server (Vite) answer the same URLs the same way. Which bytes live at which URL is the
// registry's business (registry.ts), not this file's.

export const DATASET_PREFIX = '/api/datasets/';

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
