// Binaries past CHUNK_BYTES travel as `chunk` messages: pieces of one stream in order, then the
// message that names the stream. This file cuts a binary into pieces and puts pieces back together,
// refusing any stream that breaks the rules; sending and naming streams belong to the sockets.
//
// @example
//   for (const { meta, data } of chunkPieces(bytes, 'p-12')) socket.emit('chunk', meta, data);
//   // the other end
//   const assembler = new ChunkAssembler({ maxBytes: 256 << 20, maxStreams: 4 });
//   socket.on('chunk', (meta, data) => assembler.add(meta, data));
//   const whole = assembler.take(meta.chunks); // when the message naming the stream arrives
import { CHUNK_BYTES, type ChunkMeta } from './protocol.ts';

export class ChunkError extends Error {
  override name = 'ChunkError';
  constructor(
    message: string,
    readonly stream: string,
  ) {
    super(message);
  }
}

/** `bytes` as pieces of at most `size` bytes (views into `bytes`, no copy); an empty binary is one empty piece. */
export function chunkPieces(bytes: Uint8Array, stream: string, size = CHUNK_BYTES): { meta: ChunkMeta; data: Uint8Array }[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  const total = bytes.byteLength;
  const count = Math.max(1, Math.ceil(total / size));
  const pieces: { meta: ChunkMeta; data: Uint8Array }[] = [];
  for (let index = 0; index < count; index++) {
    pieces.push({ meta: { stream, index, count, total }, data: bytes.subarray(index * size, Math.min(total, (index + 1) * size)) });
  }
  return pieces;
}

interface OpenStream {
  buffer: Uint8Array;
  count: number;
  /** Pieces received. */
  next: number;
  /** Bytes received. */
  filled: number;
}

export class ChunkAssembler {
  private readonly maxBytes: () => number;
  private readonly maxStreams: number;
  private readonly open = new Map<string, OpenStream>();

  /**
   * maxBytes: the largest binary one stream may carry (or a function asked at each new stream: the
   * coordinator sizes it from the worker's run); maxStreams: how many may be held at once (complete ones until taken).
   */
  constructor(opts: { maxBytes: number | (() => number); maxStreams: number }) {
    const max = opts.maxBytes;
    this.maxBytes = typeof max === 'number' ? () => max : max;
    this.maxStreams = opts.maxStreams;
  }

  /** Streams held, complete or not. */
  get streams(): number {
    return this.open.size;
  }

  /** Whether all pieces of `stream` have arrived. */
  complete(stream: string): boolean {
    const s = this.open.get(stream);
    return s !== undefined && s.next === s.count;
  }

  /** Adds one piece. Throws ChunkError naming the problem, and drops the stream then. */
  add(meta: ChunkMeta, data: ArrayBuffer | ArrayBufferView): void {
    const { stream, index, count, total } = meta;
    const fail = (message: string): never => {
      this.open.delete(stream);
      throw new ChunkError(`stream "${stream}": ${message}`, stream);
    };
    // What a worker sends is checked here, not trusted to match the type: a piece may come as anything.
    if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) fail(`a piece is binary data, got ${data === null ? 'null' : typeof data}`);
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!Number.isInteger(index) || index < 0) fail(`piece index ${index} is not a non-negative integer`);
    if (!Number.isInteger(count) || count < 1) fail(`a stream has a whole number of pieces, at least 1; got count ${count}`);
    if (!Number.isInteger(total) || total < 0) fail(`total ${total} is not a non-negative integer`);

    let s = this.open.get(stream);
    if (index === 0) {
      if (s) fail(`piece 0 came again while the stream was open (after ${s.next} of ${s.count} pieces)`);
      const max = this.maxBytes();
      if (total > max) fail(`${total} bytes is more than the ${max} a stream may carry`);
      if (count > Math.max(1, total)) fail(`${count} pieces cannot carry ${total} bytes (every piece but an empty binary's holds at least one byte)`);
      if (this.open.size >= this.maxStreams) {
        throw new ChunkError(`stream "${stream}": ${this.open.size} streams are open already, the most allowed (${[...this.open.keys()].join(', ')})`, stream);
      }
      s = { buffer: new Uint8Array(total), count, next: 0, filled: 0 };
      this.open.set(stream, s);
    } else if (!s) {
      return fail(`piece ${index} came before piece 0`);
    }
    if (s.next === s.count) fail(`piece ${index} came after the stream was complete (${s.count} pieces)`);
    if (index >= count) fail(`piece ${index} is past the last of the ${count} pieces the stream has`);
    if (index !== s.next) fail(`piece ${index} came when piece ${s.next} was next: pieces come in order`);
    if (count !== s.count || total !== s.buffer.byteLength) fail(`piece ${index} says ${count} pieces of ${total} bytes, piece 0 said ${s.count} of ${s.buffer.byteLength}`);
    const end = s.filled + bytes.byteLength;
    if (end > total) fail(`piece ${index} (${bytes.byteLength} bytes) runs past the ${total} bytes of the stream, at byte ${end}`);
    if (index === count - 1 && end !== total) fail(`the last piece ends at byte ${end}, the stream holds ${total}`);
    if (index < count - 1 && bytes.byteLength === 0) fail(`piece ${index} of ${count} is empty`);
    s.buffer.set(bytes, s.filled);
    s.filled = end;
    s.next++;
  }

  /** The whole binary of a complete stream, which is forgotten then. */
  take(stream: string): Uint8Array {
    const s = this.open.get(stream);
    if (!s) throw new ChunkError(`stream "${stream}" is unknown: no piece of it came, or it was dropped`, stream);
    if (s.next !== s.count) throw new ChunkError(`stream "${stream}" is incomplete: ${s.next} of ${s.count} pieces (${s.filled} of ${s.buffer.byteLength} bytes) came`, stream);
    this.open.delete(stream);
    return s.buffer;
  }

  /** Forgets a stream (a sender that left); false when none was held. */
  drop(stream: string): boolean {
    return this.open.delete(stream);
  }
}
