// The worker's copy of the training data: shards fetched over HTTP at their content-hashed
// URLs, each once (concurrent requests for one shard share a fetch), then batches cut from them.
import { decodeDataset, decodeInputs, inputCodingOf, labelWidthOf, type Dataset } from '../../shared/dataset.ts';
import type { ShardInfo } from '../../shared/protocol.ts';

/** Where a worker keeps shards between runs and restarts (a Node worker's cache directory); keyed by SHA-256. */
export interface ShardCache {
  get(sha256: string): Promise<Uint8Array | undefined>;
  put(sha256: string, bytes: Uint8Array): Promise<void>;
}

export class ShardStore {
  private shards = new Map<string, Promise<Dataset>>();
  /** Shard fetches made (each shard once). */
  fetches = 0;
  bytesFetched = 0;

  constructor(
    private readonly infos: ShardInfo[],
    private readonly base = '',
    private readonly cache?: ShardCache,
  ) {}

  private shardFor(index: number): ShardInfo {
    const s = this.infos.find((i) => index >= i.start && index < i.start + i.count);
    if (!s) throw new RangeError(`example ${index} is in no shard of this dataset`);
    return s;
  }

  private load(info: ShardInfo): Promise<Dataset> {
    let p = this.shards.get(info.sha256);
    if (!p) {
      p = (async () => {
        const cached = await this.cache?.get(info.sha256).catch(() => undefined);
        if (cached && cached.byteLength === info.bytes) return decodeDataset(cached);
        const res = await fetch(`${this.base}${info.url}`);
        if (!res.ok) throw new Error(`shard ${info.url}: the server answered ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        this.fetches++;
        this.bytesFetched += bytes.byteLength;
        const dataset = decodeDataset(bytes);
        // Kept only once it decoded; a cache that cannot write costs a download next time, nothing more.
        await this.cache?.put(info.sha256, bytes).catch(() => undefined);
        return dataset;
      })();
      p.catch(() => this.shards.delete(info.sha256)); // a failed fetch is retried next time
      this.shards.set(info.sha256, p);
    }
    return p;
  }

  /**
   * Inputs [n, features] (pixel/255, or token ids for a text) and labels [n, labelWidth] (one per
   * example, or the next token at each position) of the examples at `indices`.
   */
  async batch(indices: Uint32Array): Promise<{ x: Float32Array; labels: Uint8Array }> {
    const infos = [...new Set([...indices].map((i) => this.shardFor(i)))];
    const loaded = new Map(await Promise.all(infos.map(async (info) => [info, await this.load(info)] as const)));
    const first = loaded.values().next().value!;
    const { features } = first;
    const width = labelWidthOf(first);
    const coding = inputCodingOf(first);
    const x = new Float32Array(indices.length * features);
    const labels = new Uint8Array(indices.length * width);
    indices.forEach((index, row) => {
      const info = this.shardFor(index);
      const ds = loaded.get(info)!;
      const local = index - info.start;
      labels.set(ds.y.subarray(local * width, (local + 1) * width), row * width);
      decodeInputs(coding, ds.x.subarray(local * features, (local + 1) * features), x, row * features);
    });
    return { x, labels };
  }
}
