// Fetches a built-in dataset split from the coordinator (or the dev server): the index first,
// then the split at its content-hashed URL, which the browser caches for good.
import { decodeDataset, type Dataset } from '../../shared/dataset.ts';

export interface FetchProgress {
  split: string;
  loaded: number;
  total: number;
}

export async function fetchDatasetSplit(name: string, split: 'train' | 'test', onProgress?: (p: FetchProgress) => void, base = ''): Promise<Dataset> {
  const indexRes = await fetch(`${base}/api/datasets/${encodeURIComponent(name)}`);
  if (!indexRes.ok) throw new Error(`dataset ${name}: the server answered ${indexRes.status} ${await indexRes.text()}`);
  const index = (await indexRes.json()) as { splits: Record<string, { url: string; bytes: number }> };
  const entry = index.splits[split];
  if (!entry) throw new Error(`dataset ${name} has no split "${split}"`);
  const res = await fetch(`${base}${entry.url}`);
  if (!res.ok || !res.body) throw new Error(`dataset ${name}/${split}: the server answered ${res.status}`);
  const bytes = new Uint8Array(entry.bytes);
  const reader = res.body.getReader();
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > bytes.byteLength) throw new Error(`dataset ${name}/${split} is longer than the ${entry.bytes} bytes announced`);
    bytes.set(value, loaded);
    loaded += value.byteLength;
    onProgress?.({ split, loaded, total: entry.bytes });
  }
  if (loaded !== entry.bytes) throw new Error(`dataset ${name}/${split} ended after ${loaded} of ${entry.bytes} bytes`);
  return decodeDataset(bytes);
}
