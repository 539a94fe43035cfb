// The simulator's local mode with a lossy coding behaves as a real worker does: each simulated
// worker takes its inner steps for real with its own optimizer state and sends its
// pseudo-gradient coded as int8 with error feedback, the run trains, and the bytes the links
// carry up are the coded results, as the coordinator counts them (codedBytes per task).
import { describe, expect, test } from 'vitest';
import { DatasetRegistry } from '../server/data/registry.ts';
import { parseRunSpec } from '../shared/run-spec.ts';
import { codedBytes, codingOf } from '../shared/update-codec.ts';
import { GridSim } from '../bench/sim/grid-sim.ts';
import { MESSAGE_OVERHEAD_BYTES } from '../bench/sim/link.ts';
import { equalWorkers } from '../bench/sim/profiles.ts';
import { sharedDataDir } from './helpers/coordinator.ts';

const H = 4;
const BATCH = 64;

describe('simulated local mode with compression (virtual time)', () => {
  test('4 workers, H = 4, int8 both ways: the run trains, and bytes per example up are the coded pseudo-gradients', async () => {
    const dataset = new DatasetRegistry(sharedDataDir).get('mnist-10k')!;
    const spec = parseRunSpec({
      name: 'comm-sim',
      dataset: 'mnist-10k',
      model: { kind: 'mlp', layers: [784, 32, 10] },
      optimizer: { lr: 2e-3 },
      batchPerTask: BATCH,
      sync: { mode: 'local', innerSteps: H },
      compression: 'int8',
      evalEvery: 1,
      evalExamples: 1000,
      stop: { targetAccuracy: 0.85, maxRounds: 40 },
    });
    const sim = new GridSim({ spec, dataset });
    for (const p of equalWorkers(4, 1000)) sim.addWorker(p);
    const before = sim.run.accuracy;
    const out = await sim.runUntil({ maxSimMs: 600_000 });
    sim.close();
    expect(before).toBeNull();
    expect(out.completed, out.stopReason ?? 'no stop').toBe(true);
    expect(out.accuracy).toBeGreaterThanOrEqual(0.85);

    const workers = [...sim.workers.values()];
    const tasks = workers.reduce((a, w) => a + w.stats.tasks, 0);
    const computed = workers.reduce((a, w) => a + w.stats.examples, 0);
    expect(workers.every((w) => w.stats.refused === 0 && w.stats.stale === 0)).toBe(true);
    // Equal speeds: every task is H steps of BATCH examples, one per worker per round.
    expect(computed).toBe(tasks * H * BATCH);
    expect(out.examples).toBe(computed);
    const perTask = codedBytes(codingOf(spec.compression, 'up'), sim.run.paramCount);
    expect(perTask).toBeLessThan(0.27 * 4 * sim.run.paramCount); // int8: a quarter of f32, plus a scale per block
    // The coordinator's count and the links' count of what went up agree with the coding.
    const linkPayloadUp = workers.reduce((a, w) => a + w.up.bytes - MESSAGE_OVERHEAD_BYTES * w.up.messages, 0);
    expect(linkPayloadUp).toBe(out.bytesUp);
    const perExampleUp = out.bytesUp / out.examples;
    expect(Math.abs(perExampleUp / (perTask / (H * BATCH)) - 1)).toBeLessThan(0.03);
    // Down: int8 deltas after the first full message, plus a snapshot each and the task indices.
    expect(out.bytesDown).toBeLessThan(out.rounds * 4 * (perTask + 4 * H * BATCH) + 4 * 4 * sim.run.paramCount * 2);
  }, 30_000);
});
