// How one run's parameters reach its workers: each new version as a coded delta against the
// version they hold, and a content-addressed snapshot for a worker that holds none. The channel
// keeps the shared view (what every worker holds) and moves it with the same ParamReplica code the
// workers run, so lossy coding never makes holders disagree, and the next delta (master − view)
// carries what the last one left out. Sending, and choosing who gets what, belong to the rounds.
//
// @example
//   const channel = new ParamChannel(run.id, params.length, codingOf(spec.compression, 'down'));
//   const { meta, data } = channel.publish(params, version); // to every worker holding version - 1
//   const { meta: snap } = channel.snapshot();                 // to a worker that holds none
import { createHash } from 'node:crypto';
import { ParamReplica } from '../../shared/param-replica.ts';
import type { ParamsMeta } from '../../shared/protocol.ts';
import { encodeUpdate, type UpdateCoding } from '../../shared/update-codec.ts';

export class ParamChannelError extends Error {
  override name = 'ParamChannelError';
}

export interface SnapshotEntry {
  version: number;
  sha256: string;
  /** The view's float32 values at `version`, little-endian. */
  bytes: Uint8Array;
}

export type SnapshotLookup = Uint8Array | { error: string; code: 'stale_version' | 'unknown_hash' };

export function snapshotUrl(runId: string, version: number, sha256: string): string {
  return `/api/runs/${encodeURIComponent(runId)}/params/${version}/${sha256}`;
}

export class ParamChannel {
  /** What every worker holds; move it only through publish and reset. */
  readonly view: ParamReplica;
  private readonly scratch: Float32Array;
  private readonly keepSnapshots: number;
  /** Oldest first. */
  private readonly snapshots: SnapshotEntry[] = [];

  constructor(
    readonly runId: string,
    readonly count: number,
    readonly coding: UpdateCoding,
    opts: { keepSnapshots?: number } = {},
  ) {
    this.keepSnapshots = opts.keepSnapshots ?? 3;
    if (!Number.isInteger(this.keepSnapshots) || this.keepSnapshots < 1) throw new ParamChannelError(`keepSnapshots must be a positive integer, got ${this.keepSnapshots}`);
    this.view = new ParamReplica(count);
    this.scratch = new Float32Array(count);
  }

  /**
   * The message that brings every worker from the view's version to `version`, whose master
   * parameters are `params` (f32[count]); the view is moved to what the workers will hold.
   * Coding none (or the first version) sends the values in full; otherwise a delta coded as the
   * run's compression.down, with base = the previous version.
   */
  publish(params: Float32Array, version: number): { meta: ParamsMeta; data: Uint8Array } {
    if (params.length !== this.count) throw new ParamChannelError(`run ${this.runId}: parameters hold ${params.length} values, the run ${this.count}`);
    if (!Number.isInteger(version) || version < 0) throw new ParamChannelError(`run ${this.runId}: version must be a non-negative integer, got ${version}`);
    const base = this.view.version;
    if (version <= base) throw new ParamChannelError(`run ${this.runId}: version ${version} is not past ${base}, the one workers hold`);
    if (this.coding.kind === 'none' || base < 0) {
      this.view.setFull(version, params);
      const data = new Uint8Array(4 * this.count);
      data.set(bytesOf(this.view.params));
      return { meta: { runId: this.runId, version, count: this.count, form: 'full' }, data };
    }
    const delta = this.scratch;
    const held = this.view.params;
    for (let i = 0; i < this.count; i++) delta[i] = params[i] - held[i];
    const data = encodeUpdate(this.coding, delta);
    const meta: ParamsMeta = { runId: this.runId, version, count: this.count, form: 'delta', base, coding: this.coding };
    this.view.applyDelta({ base, version, coding: this.coding }, data);
    return { meta, data };
  }

  /**
   * The view at its version as a snapshot message (the binary is empty: fetch `snapshot.url`).
   * Made once per version; the last `keepSnapshots` versions stay servable.
   */
  snapshot(): { meta: ParamsMeta; data: Uint8Array } {
    const version = this.view.version;
    if (version < 0) throw new ParamChannelError(`run ${this.runId}: no parameters published yet, so no snapshot`);
    let entry = this.snapshots.find((s) => s.version === version);
    if (!entry) {
      const bytes = bytesOf(this.view.params).slice();
      entry = { version, sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
      this.snapshots.push(entry);
      while (this.snapshots.length > this.keepSnapshots) this.snapshots.shift();
    }
    const snapshot = { url: snapshotUrl(this.runId, version, entry.sha256), sha256: entry.sha256, bytes: entry.bytes.byteLength };
    return { meta: { runId: this.runId, version, count: this.count, form: 'snapshot', snapshot }, data: new Uint8Array(0) };
  }

  /** The bytes a snapshot URL names, or why there are none (for the HTTP route). */
  lookup(version: number, sha256: string): SnapshotLookup {
    const entry = this.snapshots.find((s) => s.version === version);
    if (!entry) {
      const held = this.snapshots.map((s) => s.version);
      const serving = held.length ? `it serves snapshots of version${held.length > 1 ? 's' : ''} ${held.join(', ')}` : 'it serves no snapshot yet';
      return { code: 'stale_version', error: `run ${this.runId} has no snapshot of version ${version}: ${serving} (the latest parameters are version ${this.view.version}); ask for the current snapshot` };
    }
    if (entry.sha256 !== sha256) return { code: 'unknown_hash', error: `run ${this.runId}'s snapshot of version ${version} does not have SHA-256 ${sha256}` };
    return entry.bytes;
  }

  /** Versions with a servable snapshot, oldest first. */
  get snapshotVersions(): number[] {
    return this.snapshots.map((s) => s.version);
  }

  /** Starts over from `params` at `version` (a run restored from a checkpoint): workers need a snapshot. */
  reset(params: Float32Array, version: number): void {
    if (params.length !== this.count) throw new ParamChannelError(`run ${this.runId}: parameters hold ${params.length} values, the run ${this.count}`);
    this.snapshots.length = 0;
    this.view.setFull(version, params);
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
