// A worker's copy of a run's parameters on the in-memory port (tests and the simulator): the same
// ParamReplica a real worker keeps, with a snapshot read straight from the run's channel instead
// of fetched over HTTP. Synchronous, so a test worker can compute as soon as a message arrives.
import { float32From } from '../../shared/binary.ts';
import { ParamReplica } from '../../shared/param-replica.ts';
import type { ParamsMeta } from '../../shared/protocol.ts';
import type { ParamChannel } from './param-channel.ts';

export class MemoryReplica {
  replica?: ParamReplica;

  constructor(private readonly channelOf: (runId: string) => ParamChannel | undefined) {}

  /**
   * Applies one `params` message; returns the parameters held after it. Throws (ParamReplicaError,
   * or a missing snapshot) when it cannot follow: the caller asks for a resync.
   */
  receive(meta: ParamsMeta, data: Uint8Array): ParamReplica {
    if (!this.replica || this.replica.count !== meta.count) this.replica = new ParamReplica(meta.count);
    if (meta.form === 'snapshot') {
      const found = this.channelOf(meta.runId)?.lookup(meta.version, meta.snapshot!.sha256);
      if (!found || !(found instanceof Uint8Array)) throw new Error(`snapshot ${meta.snapshot?.url}: ${found ? found.error : 'no such run'}`);
      this.replica.setFull(meta.version, float32From(found, true));
    } else this.replica.receive(meta, data);
    return this.replica;
  }
}
