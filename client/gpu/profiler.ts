// Optional per-dispatch GPU timing through timestamp queries. Off by default: with it on,
// each dispatch gets its own compute pass, which costs a little.

export interface KernelTiming {
  label: string;
  /** GPU time in milliseconds. */
  ms: number;
}

export class Profiler {
  private querySet: GPUQuerySet;
  private resolve: GPUBuffer;
  private readback: GPUBuffer;
  private labels: string[] = [];
  readonly capacity: number;

  constructor(
    private readonly device: GPUDevice,
    capacity = 512,
  ) {
    this.capacity = capacity;
    this.querySet = device.createQuerySet({ label: 'profiler', type: 'timestamp', count: capacity * 2 });
    this.resolve = device.createBuffer({ label: 'profiler-resolve', size: capacity * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ label: 'profiler-read', size: capacity * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Timestamp writes for the next pass, or undefined when full. */
  passTimestamps(label: string): GPUComputePassTimestampWrites | undefined {
    const i = this.labels.length;
    if (i >= this.capacity) return undefined;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Resolves what was recorded since the last collect into `encoder`. */
  resolveInto(encoder: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (!n) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16 * n);
  }

  /** Reads the timings of the passes resolved last, and starts a new window. */
  async collect(): Promise<KernelTiming[]> {
    const labels = this.labels;
    this.labels = [];
    if (!labels.length) return [];
    await this.readback.mapAsync(GPUMapMode.READ, 0, 16 * labels.length);
    const t = new BigUint64Array(this.readback.getMappedRange(0, 16 * labels.length).slice(0));
    this.readback.unmap();
    return labels.map((label, i) => ({ label, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
  }
}
