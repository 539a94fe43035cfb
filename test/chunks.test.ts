// Binaries in chunks: a round trip for sizes on and around CHUNK_BYTES boundaries, and every broken
// stream (out of order, oversized, too many at once, pieces that do not add up) refused with its
// reason and forgotten.
import { describe, expect, test } from 'vitest';
import { ChunkAssembler, ChunkError, chunkPieces } from '../shared/chunks.ts';
import { CHUNK_BYTES, type ChunkMeta } from '../shared/protocol.ts';

const filled = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7919 + (i >>> 8)) & 0xff;
  return out;
};

describe('round trip', () => {
  test.each([0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES - 1])('%i bytes', (n) => {
    const bytes = filled(n);
    const pieces = chunkPieces(bytes, 's');
    expect(pieces.length).toBe(Math.max(1, Math.ceil(n / CHUNK_BYTES)));
    for (const [i, p] of pieces.entries()) {
      expect(p.meta).toEqual({ stream: 's', index: i, count: pieces.length, total: n });
      expect(p.data.buffer).toBe(bytes.buffer); // a view, not a copy
      expect(p.data.byteLength).toBeLessThanOrEqual(CHUNK_BYTES);
    }
    const assembler = new ChunkAssembler({ maxBytes: 3 * CHUNK_BYTES, maxStreams: 1 });
    for (const p of pieces) assembler.add(p.meta, p.data);
    expect(assembler.complete('s')).toBe(true);
    const whole = assembler.take('s');
    expect(whole.byteLength).toBe(n);
    expect(Buffer.from(whole).equals(Buffer.from(bytes))).toBe(true);
    expect(assembler.streams).toBe(0);
  });

  test('pieces as ArrayBuffers, Node Buffers at an offset, and interleaved streams', () => {
    const a = filled(1000);
    const b = filled(250).reverse();
    const assembler = new ChunkAssembler({ maxBytes: 1000, maxStreams: 2 });
    const pa = chunkPieces(a, 'a', 300);
    const pb = chunkPieces(b, 'b', 100);
    for (let i = 0; i < 4; i++) {
      assembler.add(pa[i].meta, pa[i].data.slice().buffer);
      if (i < 3) assembler.add(pb[i].meta, Buffer.concat([Buffer.alloc(3), pb[i].data]).subarray(3));
    }
    expect(assembler.take('b')).toEqual(b);
    expect(assembler.take('a')).toEqual(a);
  });
});

describe('a broken stream is refused with its reason and dropped', () => {
  const size = 100;
  const pieces = chunkPieces(filled(350), 's', size);
  const fresh = () => new ChunkAssembler({ maxBytes: 400, maxStreams: 2 });
  const refused = (assembler: ChunkAssembler, meta: ChunkMeta, data: Uint8Array, message: string) => {
    let error: unknown;
    try {
      assembler.add(meta, data);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ChunkError);
    expect((error as ChunkError).message).toBe(message);
    expect((error as ChunkError).stream).toBe(meta.stream);
    expect(() => assembler.take(meta.stream)).toThrow(`stream "${meta.stream}" is unknown`);
  };

  test('out of order: a piece skipped, repeated, or before piece 0', () => {
    const a = fresh();
    a.add(pieces[0].meta, pieces[0].data);
    refused(a, pieces[2].meta, pieces[2].data, 'stream "s": piece 2 came when piece 1 was next: pieces come in order');
    refused(fresh(), pieces[1].meta, pieces[1].data, 'stream "s": piece 1 came before piece 0');
    const b = fresh();
    b.add(pieces[0].meta, pieces[0].data);
    expect(() => b.add(pieces[0].meta, pieces[0].data)).toThrow('stream "s": piece 0 came again while the stream was open (after 1 of 4 pieces)');
    expect(b.streams).toBe(0);
    const c = fresh();
    for (const p of pieces) c.add(p.meta, p.data);
    expect(() => c.add({ ...pieces[3].meta, index: 4 }, new Uint8Array(0))).toThrow('piece 4 came after the stream was complete (4 pieces)');
    expect(c.streams).toBe(0);
    const d = fresh();
    d.add(pieces[0].meta, pieces[0].data);
    refused(d, { ...pieces[1].meta, index: 9 }, pieces[1].data, 'stream "s": piece 9 is past the last of the 4 pieces the stream has');
  });

  test('oversized: a total past maxBytes, or pieces that run past the total', () => {
    const big = chunkPieces(filled(401), 'big', size);
    const a = fresh();
    expect(() => a.add(big[0].meta, big[0].data)).toThrow('stream "big": 401 bytes is more than the 400 a stream may carry');
    expect(a.streams).toBe(0);
    const b = fresh();
    b.add(pieces[0].meta, pieces[0].data);
    expect(() => b.add(pieces[1].meta, filled(300))).toThrow('stream "s": piece 1 (300 bytes) runs past the 350 bytes of the stream, at byte 400');
    expect(b.streams).toBe(0);
  });

  test('a limit sized from what the receiver serves is asked at each new stream (the coordinator: the worker run\'s model)', () => {
    let limit = 1000;
    const a = new ChunkAssembler({ maxBytes: () => limit, maxStreams: 2 });
    const big = chunkPieces(filled(401), 'big', size);
    a.add(big[0].meta, big[0].data); // within 1000
    limit = 400; // the worker moved to a run of a smaller model
    const again = chunkPieces(filled(401), 'again', size);
    expect(() => a.add(again[0].meta, again[0].data)).toThrow('stream "again": 401 bytes is more than the 400 a stream may carry');
  });

  test('pieces that do not add up, or disagree with piece 0', () => {
    const a = fresh();
    for (const p of pieces.slice(0, 3)) a.add(p.meta, p.data);
    expect(() => a.add(pieces[3].meta, pieces[3].data.subarray(1))).toThrow('stream "s": the last piece ends at byte 349, the stream holds 350');
    const b = fresh();
    b.add(pieces[0].meta, pieces[0].data);
    expect(() => b.add({ ...pieces[1].meta, total: 360 }, pieces[1].data)).toThrow('piece 1 says 4 pieces of 360 bytes, piece 0 said 4 of 350');
    const c = fresh();
    c.add(pieces[0].meta, pieces[0].data);
    expect(() => c.add(pieces[1].meta, new Uint8Array(0))).toThrow('piece 1 of 4 is empty');
    expect(() => fresh().add({ stream: 'z', index: 0, count: 5, total: 4 }, new Uint8Array(1))).toThrow('5 pieces cannot carry 4 bytes');
    expect(() => fresh().add({ stream: 'z', index: 0, count: 0, total: 4 }, new Uint8Array(1))).toThrow('got count 0');
  });

  test('too many streams at once: the new one is refused, the open ones kept', () => {
    const a = fresh();
    const [s1, s2, s3] = ['x', 'y', 'w'].map((s) => chunkPieces(filled(150), s, size));
    a.add(s1[0].meta, s1[0].data);
    a.add(s2[0].meta, s2[0].data);
    a.add(s2[1].meta, s2[1].data); // complete, not taken yet: still held
    expect(() => a.add(s3[0].meta, s3[0].data)).toThrow('stream "w": 2 streams are open already, the most allowed (x, y)');
    expect(a.streams).toBe(2);
    a.drop('x');
    a.add(s3[0].meta, s3[0].data);
    expect(a.take('y')).toEqual(filled(150));
  });

  test('take of an unknown or incomplete stream', () => {
    const a = fresh();
    expect(() => a.take('s')).toThrow('stream "s" is unknown: no piece of it came, or it was dropped');
    a.add(pieces[0].meta, pieces[0].data);
    expect(() => a.take('s')).toThrow('stream "s" is incomplete: 1 of 4 pieces (100 of 350 bytes) came');
    expect(a.drop('s')).toBe(true);
    expect(a.drop('s')).toBe(false);
  });
});
