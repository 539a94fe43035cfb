// A Node worker's shards on disk: one file per shard, named by its SHA-256 and checked against it
// when read, so a restarted worker or one that moves to another run of the same dataset does not
// download it again. Writes go to a temporary name first: a worker stopped mid-write leaves no
// half shard behind.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ShardCache } from '../client/worker/shard-store.ts';

/** $CROWDTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/crowdtrain, else ~/.cache/crowdtrain. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CROWDTRAIN_CACHE_DIR) return env.CROWDTRAIN_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'crowdtrain');
}

export class DiskShardCache implements ShardCache {
  /** Shards read from disk, and written to it. */
  hits = 0;
  writes = 0;

  constructor(readonly dir: string) {}

  private file(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a SHA-256: ${sha256}`);
    return join(this.dir, 'shards', `${sha256}.ctds`);
  }

  async get(sha256: string): Promise<Uint8Array | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.file(sha256));
    } catch {
      return undefined;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) return undefined;
    this.hits++;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    const file = this.file(sha256);
    await mkdir(join(this.dir, 'shards'), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
    this.writes++;
  }
}
