// Robust aggregation in a run: the real scheduler and rounds on the in-memory port, honest workers
// computing real gradients, and a hostile minority that sends its honest gradient flipped and
// scaled by 10. The run's learned norm bound clips that result to 3 × the recent median norm, which
// leaves the plain mean dragged off less far than the raw −10 × (about 15 points rather than
// to chance) but still poisoned; centered clipping ends close to the clean run (the hostile vote
// still counts, clipped to the radius, so early rounds are slower).
import { describe, expect, test } from 'vitest';
import { DatasetRegistry } from '../server/data/registry.ts';
import { parseRunSpec, type RunSpecInput } from '../shared/run-spec.ts';
import { MemoryGrid } from './helpers/memory-grid.ts';
import { sharedDataDir } from './helpers/coordinator.ts';

const spec = (aggregation: RunSpecInput['aggregation']): RunSpecInput => ({
  dataset: 'mnist-10k',
  model: { kind: 'mlp', layers: [784, 32, 10] },
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchPerTask: 32,
  seed: 5,
  evalEvery: 150,
  sync: { taskSizing: 'fixed', minWorkers: 6 },
  aggregation,
  stop: { maxRounds: 150 },
});

async function train(aggregation: RunSpecInput['aggregation'], hostile: number): Promise<number> {
  const g = new MemoryGrid(parseRunSpec(spec(aggregation)), new DatasetRegistry(sharedDataDir).get('mnist-10k')!, { evalExamples: 2000 });
  for (let i = 0; i < 6; i++) {
    const w = g.addWorker(`w${i}`);
    if (i < hostile) {
      w.tamper = (bytes, meta) => {
        const flipped = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        for (let j = 0; j < flipped.length; j++) flipped[j] *= -10;
        return { bytes: new Uint8Array(flipped.buffer), meta };
      };
    }
  }
  await g.runUntil(() => false);
  expect(g.run.version).toBe(150);
  g.close();
  return g.run.accuracy!;
}

describe('a sign-flipping minority (1 of 6 sends -10 × its gradient)', () => {
  test('the mean is poisoned; centered clipping ends within 3 points of the clean run after 150 rounds', async () => {
    const clean = await train({ rule: 'mean' }, 0);
    const poisoned = await train({ rule: 'mean' }, 1);
    const clipped = await train({ rule: 'centered-clip', workerMomentum: 0 }, 1);
    expect(clean).toBeGreaterThan(0.8);
    expect(poisoned, `clean ${clean}, mean under attack ${poisoned}`).toBeLessThan(clean - 0.1);
    expect(Math.abs(clipped - clean), `clean ${clean}, centered clipping under attack ${clipped}`).toBeLessThanOrEqual(0.03);
  });
});
