// Test-set evaluation on the coordinator: accuracy and mean cross-entropy of a run's current
// parameters on its dataset's held-out examples (or the first `examples` of them), through the
// fast CPU code in shared/: the MLP's sparse-input path for the MLP form, the layer kernels for a
// layer list.
import { CpuMlp } from '../client/cpu/mlp-cpu.ts';
import { cpuKernels } from '../shared/cpu/index.ts';
import { featuresAsFloat, type Dataset } from '../shared/dataset.ts';
import { forwardRange } from '../shared/layers/sequence.ts';
import type { RunModel } from '../shared/run-model.ts';
import type { Evaluation } from './scheduler.ts';

/** Examples a layer-list model evaluates at a time (bounds the activations held at once). */
const CHUNK = 256;

export class Evaluator {
  private x: Float32Array;
  private nets = new Map<string, CpuMlp>();

  constructor(private readonly test: Dataset) {
    this.x = featuresAsFloat(test);
  }

  evaluate(net: RunModel, params: Float32Array, examples = this.test.count): Evaluation {
    const n = Math.min(examples, this.test.count);
    const classes = net.description.outShape[net.description.outShape.length - 1];
    const logits = net.mlp ? this.mlpLogits(net, params, n) : this.layerLogits(net, params, n);
    let correct = 0;
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const row = logits.subarray(r * classes, (r + 1) * classes);
      let best = 0;
      let max = row[0];
      for (let c = 1; c < classes; c++) if (row[c] > max) (max = row[c]), (best = c);
      if (best === this.test.y[r]) correct++;
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
      loss += Math.log(sum) + max - row[this.test.y[r]];
    }
    return { accuracy: correct / n, loss: loss / n };
  }

  private mlpLogits(net: RunModel, params: Float32Array, n: number): Float32Array {
    const model = net.mlp!;
    const key = `${model.layers.join('-')}:${model.activation}`;
    let cpu = this.nets.get(key);
    if (!cpu) {
      cpu = new CpuMlp(model, this.test.count);
      this.nets.set(key, cpu);
    }
    cpu.setParams(params);
    return cpu.predict(this.x, n);
  }

  private layerLogits(net: RunModel, params: Float32Array, n: number): Float32Array {
    const features = this.test.features;
    const classes = net.description.outShape[net.description.outShape.length - 1];
    const out = new Float32Array(n * classes);
    for (let start = 0; start < n; start += CHUNK) {
      const b = Math.min(CHUNK, n - start);
      const { y } = forwardRange(net.description, params, this.x.subarray(start * features, (start + b) * features), b, { kernels: cpuKernels });
      out.set(y, start * classes);
    }
    return out;
  }
}
