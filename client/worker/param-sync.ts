// A worker's copy of its run's parameters, kept in step with the coordinator: a snapshot fetched
// over HTTP when it holds none, then each version's message (float32 values, or a delta coded as
// the run's compression.down) applied in the order it came. Messages that arrive while a snapshot
// is on its way wait for it. A delta that does not apply (this copy holds another version) asks
// the coordinator for a fresh snapshot instead of guessing. No DOM and no sockets here: the
// worker client and the simulator give it their own fetch and resync.
import { float32From } from '../../shared/binary.ts';
import { ParamReplica, ParamReplicaError } from '../../shared/param-replica.ts';
import type { ParamsMeta } from '../../shared/protocol.ts';

export interface ParamSyncOptions {
  /** Fetches a snapshot's bytes (float32, little-endian). */
  fetchSnapshot(snapshot: NonNullable<ParamsMeta['snapshot']>): Promise<Uint8Array>;
  /** This copy cannot follow (a delta for another version, a snapshot that failed): ask for a snapshot. */
  resync(reason: string): void;
  /** A new version is held. */
  onVersion?(replica: ParamReplica): void;
}

export class ParamSync {
  private replica?: ParamReplica;
  private chain: Promise<void> = Promise.resolve();
  private generation = 0;

  constructor(private readonly opts: ParamSyncOptions) {}

  /** The parameters held now (undefined before the first snapshot). */
  get current(): ParamReplica | undefined {
    return this.replica;
  }

  /** The version held; -1 for none. */
  get version(): number {
    return this.replica?.version ?? -1;
  }

  /** Forgets the parameters (the worker serves another run). */
  clear(): void {
    this.replica = undefined;
    this.generation++;
    this.chain = Promise.resolve();
  }

  /** Resolves once every message received so far is applied (or refused). */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Takes one `params` message (its binary as it came, already reassembled from chunks). */
  receive(meta: ParamsMeta, bytes: Uint8Array): Promise<void> {
    const generation = this.generation;
    this.chain = this.chain.then(() => (generation === this.generation ? this.apply(meta, bytes) : undefined));
    return this.chain;
  }

  private async apply(meta: ParamsMeta, bytes: Uint8Array): Promise<void> {
    if (!this.replica || this.replica.count !== meta.count) this.replica = new ParamReplica(meta.count);
    const replica = this.replica;
    try {
      if (meta.form === 'snapshot') {
        if (!meta.snapshot) throw new ParamReplicaError(`a snapshot of version ${meta.version} without its URL`);
        const generation = this.generation;
        const data = await this.opts.fetchSnapshot(meta.snapshot);
        if (generation !== this.generation) return;
        if (data.byteLength !== 4 * meta.count) throw new ParamReplicaError(`the snapshot of version ${meta.version} is ${data.byteLength} bytes; ${meta.count} parameters are ${4 * meta.count}`);
        await checkSha256(data, meta.snapshot.sha256);
        replica.setFull(meta.version, float32From(data));
      } else replica.receive(meta, bytes);
    } catch (err) {
      this.opts.resync((err as Error).message);
      return;
    }
    this.opts.onVersion?.(replica);
  }
}

/** Checks a snapshot's SHA-256 where the page can compute one (WebCrypto needs a secure context: https or localhost). */
async function checkSha256(data: Uint8Array, want: string): Promise<void> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return;
  const digest = new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
  const got = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  if (got !== want) throw new ParamReplicaError(`the snapshot's SHA-256 is ${got}, its URL names ${want}`);
}
