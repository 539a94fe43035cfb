// Parameters to workers as coded deltas: for every down coding, two workers that join at different
// versions (one from a snapshot over HTTP at version 0, one at version 150) and apply every later
// message hold the coordinator's shared view bit for bit at version 200, and the view stays within
// one coding's error of the master parameters (what a delta leaves out goes into the next one).
// A delta that does not apply to the version held is refused and changes nothing.
import Fastify from 'fastify';
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { float32From } from '../shared/binary.ts';
import { ParamReplica, ParamReplicaError } from '../shared/param-replica.ts';
import type { ParamsMeta } from '../shared/protocol.ts';
import { createRng } from '../shared/rng.ts';
import type { UpdateCoding } from '../shared/update-codec.ts';
import { ParamChannel } from '../server/params/param-channel.ts';
import { registerParamRoutes } from '../server/routes/params.ts';

const N = 3001; // not a multiple of any block
const VERSIONS = 200;
const STEP = 1e-3; // standard deviation of one version's change of a parameter
const CODINGS: UpdateCoding[] = [{ kind: 'none' }, { kind: 'fp16' }, { kind: 'int8', block: 256 }, { kind: 'topk', fraction: 0.1, block: 64 }];

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: Float32Array, b: Float32Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** A worker's join: the snapshot's bytes exactly as the HTTP route sends them. */
async function fetchSnapshot(channel: ParamChannel, meta: ParamsMeta): Promise<ParamReplica> {
  const app = Fastify();
  registerParamRoutes(app, (id) => (id === channel.runId ? channel : undefined));
  const res = await app.inject({ method: 'GET', url: meta.snapshot!.url });
  await app.close();
  expect(res.statusCode).toBe(200);
  expect(createHash('sha256').update(res.rawPayload).digest('hex')).toBe(meta.snapshot!.sha256);
  const replica = new ParamReplica(meta.count);
  replica.setFull(meta.version, float32From(res.rawPayload));
  return replica;
}

describe.each(CODINGS)('down coding $kind', (coding) => {
  test(`workers joining at versions 0 and 150 hold the shared view bit for bit at version ${VERSIONS}, and the view tracks the master`, async () => {
    const rng = createRng(11);
    const master = Float32Array.from({ length: N }, () => rng.normal() * 0.1);
    const channel = new ParamChannel('run-1', N, coding);
    const messages: { meta: ParamsMeta; data: Uint8Array }[] = [];
    let a: ParamReplica | undefined;
    let b: ParamReplica | undefined;
    let worstError = 0;
    for (let v = 0; v <= VERSIONS; v++) {
      if (v > 0) for (let i = 0; i < N; i++) master[i] += STEP * rng.normal();
      const before = channel.view.version >= 0 ? Float32Array.from(channel.view.params) : new Float32Array(N);
      const msg = channel.publish(master, v);
      // As Socket.IO hands it to a worker: its own bytes.
      messages.push({ meta: structuredClone(msg.meta), data: new Uint8Array(msg.data) });
      expect(channel.view.version).toBe(v);
      expect(msg.meta.form).toBe(coding.kind === 'none' || v === 0 ? 'full' : 'delta');
      if (msg.meta.form === 'delta') expect(msg.meta.base).toBe(v - 1);

      // How far the view may be from the master after this version: the coding's error on this
      // version's delta (master − previous view), plus float32 rounding of the sum.
      const delta = maxDiff(master, before);
      const rounding = 2 ** -23 * maxAbs(master);
      const bound =
        msg.meta.form === 'full' ? 0 :
        coding.kind === 'fp16' ? 2 ** -11 * delta + 2 ** -25 + rounding :
        coding.kind === 'int8' ? (delta / 127 / 2) * 1.0001 + rounding :
        // top-k: what was not sent stays behind until it is among the largest, a few steps' worth
        // (about 2.7 seen); without feedback the unsent 90 % would drift as a random walk, ~14 steps by 200.
        6 * STEP;
      const error = maxDiff(channel.view.params, master);
      expect(error, `version ${v}`).toBeLessThanOrEqual(bound);
      worstError = Math.max(worstError, error);

      if (v === 0) a = await fetchSnapshot(channel, channel.snapshot().meta);
      if (v === 150) b = await fetchSnapshot(channel, channel.snapshot().meta);
    }
    expect(a!.version).toBe(0);
    expect(b!.version).toBe(150);
    for (const m of messages.slice(1)) a!.receive(m.meta, m.data);
    for (const m of messages.slice(151)) b!.receive(m.meta, m.data);
    expect(a!.version).toBe(VERSIONS);
    expect(b!.version).toBe(VERSIONS);
    expect(bits(a!.params)).toEqual(bits(channel.view.params));
    expect(bits(b!.params)).toEqual(bits(channel.view.params));
    if (coding.kind === 'none') expect(bits(channel.view.params)).toEqual(bits(master));
    else expect(worstError).toBeGreaterThan(0); // lossy: something was left for the next delta
  });
});

test('a delta for another version, or a malformed one, is refused and changes nothing', () => {
  const coding: UpdateCoding = { kind: 'int8', block: 256 };
  const rng = createRng(3);
  const master = Float32Array.from({ length: N }, () => rng.normal());
  const channel = new ParamChannel('run-2', N, coding);
  channel.publish(master, 0);
  const replica = new ParamReplica(N);
  replica.setFull(0, channel.view.params);
  const step = () => {
    for (let i = 0; i < N; i++) master[i] += STEP * rng.normal();
  };
  step();
  const first = channel.publish(master, 1);
  step();
  const second = channel.publish(master, 2);
  const held = Float32Array.from(replica.params);
  const unchanged = () => {
    expect(replica.version).toBe(0);
    expect(bits(replica.params)).toEqual(bits(held));
  };

  expect(() => replica.receive(second.meta, second.data)).toThrow(ParamReplicaError);
  expect(() => replica.receive(second.meta, second.data)).toThrow('a delta from version 1 to 2 does not apply to version 0, the one this replica holds');
  unchanged();
  expect(() => replica.receive(first.meta, first.data.subarray(0, first.data.byteLength - 1))).toThrow(/delta from version 0 to 1 refused: a int8 update of 3001 values is \d+ bytes, got \d+/);
  unchanged();
  expect(() => new ParamReplica(N).applyDelta({ base: 0, version: 1, coding }, first.data)).toThrow(/holds none \(fetch a snapshot first\)/);

  replica.receive(first.meta, first.data);
  replica.receive(second.meta, second.data);
  expect(bits(replica.params)).toEqual(bits(channel.view.params));
  expect(() => channel.publish(master, 2)).toThrow('run run-2: version 2 is not past 2, the one workers hold');
});

describe('snapshots', () => {
  const publishTo = (channel: ParamChannel, versions: number[]) => {
    for (const v of versions) {
      const rng = createRng(100 + v);
      channel.publish(Float32Array.from({ length: 10 }, () => rng.normal()), v);
    }
  };

  test('one per version, content-addressed, the last keepSnapshots kept, with clear refusals', () => {
    const channel = new ParamChannel('run-3', 10, { kind: 'fp16' }, { keepSnapshots: 2 });
    expect(() => channel.snapshot()).toThrow('run run-3: no parameters published yet, so no snapshot');
    publishTo(channel, [0]);
    const s0 = channel.snapshot().meta;
    expect(channel.snapshot().meta).toEqual(s0);
    const hash = s0.snapshot!.sha256;
    expect(s0).toMatchObject({ runId: 'run-3', version: 0, count: 10, form: 'snapshot', snapshot: { url: `/api/runs/run-3/params/0/${hash}`, bytes: 40 } });
    const bytes = channel.lookup(0, hash) as Uint8Array;
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(hash);
    expect(bits(float32From(bytes))).toEqual(bits(channel.view.params));

    publishTo(channel, [1]);
    // The snapshot is a copy: moving the view does not change what its URL serves.
    expect(createHash('sha256').update(channel.lookup(0, hash) as Uint8Array).digest('hex')).toBe(hash);
    channel.snapshot();
    publishTo(channel, [2]);
    channel.snapshot();
    expect(channel.snapshotVersions).toEqual([1, 2]);
    expect(channel.lookup(0, hash)).toEqual({ code: 'stale_version', error: 'run run-3 has no snapshot of version 0: it serves snapshots of versions 1, 2 (the latest parameters are version 2); ask for the current snapshot' });
    expect(channel.lookup(2, hash)).toEqual({ code: 'unknown_hash', error: `run run-3's snapshot of version 2 does not have SHA-256 ${hash}` });
  });

  test('reset starts over from a checkpoint: no snapshot of the old versions, the next delta from the restored one', () => {
    const channel = new ParamChannel('run-4', 10, { kind: 'int8', block: 4 });
    publishTo(channel, [0, 1, 2]);
    channel.snapshot();
    const restored = Float32Array.from({ length: 10 }, (_, i) => i / 10);
    channel.reset(restored, 40);
    expect(channel.view.version).toBe(40);
    expect(bits(channel.view.params)).toEqual(bits(restored));
    expect(channel.lookup(2, '0'.repeat(64))).toMatchObject({ code: 'stale_version', error: expect.stringContaining('it serves no snapshot yet') });
    const worker = new ParamReplica(10);
    worker.setFull(40, float32From(channel.lookup(40, channel.snapshot().meta.snapshot!.sha256) as Uint8Array));
    const next = channel.publish(Float32Array.from(restored, (v) => v + 0.01), 41);
    expect(next.meta).toMatchObject({ form: 'delta', base: 40, version: 41 });
    worker.receive(next.meta, next.data);
    expect(bits(worker.params)).toEqual(bits(channel.view.params));
  });
});
