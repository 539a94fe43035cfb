// Test-set evaluation on the coordinator: accuracy and mean cross-entropy of a run's current
// parameters on the 2,000 held-out digits, through the fast CPU backend.
import { CpuMlp } from '../client/cpu/mlp-cpu.ts';
import { featuresAsFloat, type Dataset } from '../shared/dataset.ts';
import type { MlpSpec } from '../shared/model.ts';
import type { Evaluation } from './scheduler.ts';

export class Evaluator {
  private x: Float32Array;
  private nets = new Map<string, CpuMlp>();

  constructor(private readonly test: Dataset) {
    this.x = featuresAsFloat(test);
  }

  evaluate(model: MlpSpec, params: Float32Array): Evaluation {
    const key = `${model.layers.join('-')}:${model.activation}`;
    let net = this.nets.get(key);
    if (!net) {
      net = new CpuMlp(model, this.test.count);
      this.nets.set(key, net);
    }
    net.setParams(params);
    const classes = model.layers[model.layers.length - 1];
    const logits = net.predict(this.x, this.test.count);
    let correct = 0;
    let loss = 0;
    for (let r = 0; r < this.test.count; r++) {
      const row = logits.subarray(r * classes, (r + 1) * classes);
      let best = 0;
      let max = row[0];
      for (let c = 1; c < classes; c++) if (row[c] > max) (max = row[c]), (best = c);
      if (best === this.test.y[r]) correct++;
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - max);
      loss += Math.log(sum) + max - row[this.test.y[r]];
    }
    return { accuracy: correct / this.test.count, loss: loss / this.test.count };
  }
}
