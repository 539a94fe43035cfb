// The parameters one holder keeps at one version: a worker's copy, or the coordinator's shared
// view of what every worker holds. A coded delta is applied here and only here, by both ends, so
// every holder of a version has the same bits however lossy the coding, and the coordinator's next
// delta (its parameters minus this view) carries what the last one left out. Fetching snapshots
// and sending messages belong elsewhere; no DOM, no Node.
//
// @example a worker
//   const replica = new ParamReplica(meta.count);
//   replica.setFull(snap.version, float32From(await (await fetch(snap.snapshot.url)).arrayBuffer()));
//   replica.receive(nextMeta, nextBytes); // form 'delta' with base = replica.version, or 'full'
import type { ParamsMeta } from './protocol.ts';
import { foldUpdate, UpdateCodecError, type UpdateCoding } from './update-codec.ts';

export class ParamReplicaError extends Error {
  override name = 'ParamReplicaError';
}

export interface DeltaMeta {
  /** The version the delta applies to: the one this replica must hold. */
  base: number;
  /** The version it gives. */
  version: number;
  coding: UpdateCoding;
}

export class ParamReplica {
  /** f32[count], valid only while version >= 0. */
  readonly params: Float32Array;
  private held = -1;

  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 0) throw new ParamReplicaError(`a replica holds a whole number of parameters, got ${count}`);
    this.params = new Float32Array(count);
  }

  /** The version held; -1 when none is. */
  get version(): number {
    return this.held;
  }

  holds(version: number): boolean {
    return this.held >= 0 && this.held === version;
  }

  /** Takes `values` (f32[count], copied) as the parameters at `version`. */
  setFull(version: number, values: ArrayLike<number>): void {
    checkVersion(version, 'version');
    if (values.length !== this.count) throw new ParamReplicaError(`parameters of version ${version} hold ${values.length} values, this replica ${this.count}`);
    this.params.set(values);
    this.held = version;
  }

  /**
   * params += decoded delta (weight 1, in place), moving from `meta.base` to `meta.version`.
   * Throws ParamReplicaError when this replica does not hold the base or the delta is malformed;
   * the parameters and version are untouched then.
   */
  applyDelta(meta: DeltaMeta, bytes: Uint8Array): void {
    checkVersion(meta.base, 'base');
    checkVersion(meta.version, 'version');
    if (meta.version <= meta.base) throw new ParamReplicaError(`a delta must move forward: base ${meta.base}, version ${meta.version}`);
    if (this.held < 0) throw new ParamReplicaError(`a delta from version ${meta.base} to ${meta.version} needs parameters of version ${meta.base}; this replica holds none (fetch a snapshot first)`);
    if (meta.base !== this.held) throw new ParamReplicaError(`a delta from version ${meta.base} to ${meta.version} does not apply to version ${this.held}, the one this replica holds`);
    try {
      // foldUpdate checks the whole update before it writes a value, so a refusal leaves params as they were.
      foldUpdate(meta.coding, bytes, this.count, 1, this.params);
    } catch (err) {
      if (err instanceof UpdateCodecError) throw new ParamReplicaError(`delta from version ${meta.base} to ${meta.version} refused: ${err.message}`);
      throw err;
    }
    this.held = meta.version;
  }

  /**
   * Takes a `params` message of form full or delta (the bytes as they came); a snapshot names a URL
   * to fetch first, then setFull. A stage's slice (`offset`) is not a whole replica's parameters.
   */
  receive(meta: ParamsMeta, bytes: Uint8Array): void {
    if (meta.count !== this.count) throw new ParamReplicaError(`parameters of run ${meta.runId} hold ${meta.count} values, this replica ${this.count}`);
    if (meta.offset !== undefined) throw new ParamReplicaError(`a stage's slice (offset ${meta.offset}) is not a whole replica's parameters`);
    const form = meta.form ?? 'full';
    if (form === 'full') {
      if (bytes.byteLength !== 4 * this.count) throw new ParamReplicaError(`full parameters of ${this.count} values are ${4 * this.count} bytes, got ${bytes.byteLength}`);
      // Copied through a DataView: the bytes may sit at any offset (a Node Buffer), and are little-endian.
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      checkVersion(meta.version, 'version');
      for (let i = 0; i < this.count; i++) this.params[i] = view.getFloat32(4 * i, true);
      this.held = meta.version;
      return;
    }
    if (form === 'delta') {
      if (meta.base === undefined || meta.coding === undefined) throw new ParamReplicaError(`a delta to version ${meta.version} must name its base and coding`);
      this.applyDelta({ base: meta.base, version: meta.version, coding: meta.coding }, bytes);
      return;
    }
    throw new ParamReplicaError(`a snapshot of version ${meta.version} is fetched from ${meta.snapshot?.url ?? '(no url)'}, then given to setFull`);
  }
}

function checkVersion(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0) throw new ParamReplicaError(`${what} must be a non-negative integer, got ${v}`);
}
