// Experiment: local mode (DiLoCo) on the MNIST CNN, the comm benchmark's grid and cap, with the
// inner and outer optimizers varied, to see which settings reach the sync f32 target (0.98)
// within 1.5x its examples. Prints the accuracy curve per outer round.
// Usage: npx tsx bench/experiments/local-outer/run.ts H INNER_LR OUTER_LR OUTER_MOMENTUM [COMPRESSION]
import { join, resolve } from 'node:path';
import { DatasetRegistry } from '../../../server/data/registry.ts';
import { COMM, rowSpec } from '../../comm.node.ts';
import { GridSim } from '../../sim/grid-sim.ts';
import { threeSpeedWorkers } from '../../sim/profiles.ts';

const [h, innerLr, outerLr, momentum, compression = 'none'] = process.argv.slice(2);
const root = resolve(import.meta.dirname, '../../..');
const plan = COMM.models.cnn;
const cap = 281_649; // 1.5 x the sync f32 row's 187,766 examples to 0.98
const base = rowSpec('cnn', { mode: 'local', compression: compression as 'none', innerSteps: Number(h) }, { targetAccuracy: 0.98, maxSamples: cap });
const spec = { ...base, optimizer: { ...base.optimizer, lr: Number(innerLr) }, sync: { ...base.sync, outer: { ...base.sync.outer!, lr: Number(outerLr), momentum: Number(momentum) } } };
const dataset = new DatasetRegistry(resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data'))).forSpec(spec)!;
const sim = new GridSim({ spec, dataset });
const label = `H=${h} inner ${innerLr} outer ${outerLr}/${momentum} ${compression}`;
sim.scheduler.onCommit((_run, p) => {
  if (p.accuracy !== null) console.log(`${label}: round ${p.version} ${p.samples} examples ${(p.time / 1000).toFixed(1)} s acc ${p.accuracy.toFixed(4)}`);
});
for (const p of threeSpeedWorkers(COMM.workers, plan.speed, COMM.link)) sim.addWorker(p);
const out = await sim.runUntil({ maxSimMs: 24 * 3_600_000, until: () => sim.run.samples + sim.openExamples() > cap });
sim.close();
const { up, down } = { up: out.bytesUp / out.examples, down: out.bytesDown / out.examples };
console.log(`${label}: done ${out.examples} examples, ${(out.simMs / 1000).toFixed(1)} s, ${up.toFixed(2)} / ${down.toFixed(2)} B/example up / down, ${out.stopReason ?? 'cap'}`);
