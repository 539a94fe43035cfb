// Typed arrays to and from the binary attachments Socket.IO delivers: an ArrayBuffer in a
// browser, a Buffer (a Uint8Array view at any offset) in Node.

export type BinaryLike = ArrayBuffer | ArrayBufferView;

/** A standalone ArrayBuffer holding exactly the view's bytes. */
export function toArrayBuffer(view: ArrayBufferView): ArrayBuffer {
  const out = new ArrayBuffer(view.byteLength);
  new Uint8Array(out).set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return out;
}

export function isBinary(data: unknown): data is BinaryLike {
  return data instanceof ArrayBuffer || ArrayBuffer.isView(data);
}

function bytesOf(data: BinaryLike): Uint8Array {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The bytes as float32 values, without a copy when they are 4-byte aligned (`copy` forces one).
 * A length that is not a multiple of 4 bytes is cut down; callers check the element count.
 */
export function float32From(data: BinaryLike, copy = false): Float32Array {
  const bytes = bytesOf(data);
  const n = Math.floor(bytes.byteLength / 4);
  if (!copy && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(bytes.subarray(0, n * 4));
  return out;
}

export function uint32From(data: BinaryLike, copy = false): Uint32Array {
  const f = float32From(data, copy);
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}
