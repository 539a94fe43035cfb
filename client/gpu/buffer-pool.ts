// Reuses GPU buffers by (usage, size class) so that per-step work allocates nothing.
// Sizes are rounded up to a power of two (at least 256 bytes); callers bind exact ranges.

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private live = new Set<GPUBuffer>();
  /** Bytes currently handed out (rounded sizes): what this worker holds on the GPU. */
  allocatedBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  static sizeClass(bytes: number): number {
    return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label = 'pooled'): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    const key = `${usage}:${size}`;
    const buf = this.free.get(key)?.pop() ?? this.device.createBuffer({ label, size, usage });
    this.live.add(buf);
    this.allocatedBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) return;
    this.allocatedBytes -= buf.size;
    const key = `${buf.usage}:${buf.size}`;
    const list = this.free.get(key) ?? [];
    list.push(buf);
    this.free.set(key, list);
  }

  /** Frees every pooled buffer that is not in use. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
  }
}
