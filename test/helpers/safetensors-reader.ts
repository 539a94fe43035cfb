// An independent safetensors reader for tests (u64 header length, JSON header, byte offsets),
// written from the format's description rather than with shared/safetensors.ts, so that a
// checkpoint is checked by code that did not write it.
import { expect } from 'vitest';

export function readSafetensors(bytes: Uint8Array) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  const body = bytes.subarray(8 + n);
  const tensors: Record<string, { shape: number[]; values: Float32Array }> = {};
  for (const [name, e] of Object.entries<{ dtype: string; shape: number[]; data_offsets: [number, number] }>(header)) {
    if (name === '__metadata__') continue;
    expect(e.dtype).toBe('F32');
    const [a, b] = e.data_offsets;
    tensors[name] = { shape: e.shape, values: new Float32Array(body.slice(a, b).buffer) };
  }
  return { headerLength: n, metadata: header.__metadata__, tensors, header };
}
