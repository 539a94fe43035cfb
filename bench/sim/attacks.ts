// Hostile workers for the simulator, as ALGORITHMS.md "Attacks, as the benchmarks use them" states
// them: each attack is a WorkerBehaviour (sim-worker.ts) built around one Adversary, which sees
// every honest result of every round the moment it is computed (the omniscient attacker of the
// ALIE and IPM papers) and reads the run's norm bound (white box). Nothing here knows of a
// particular benchmark; bench/attacks.node.ts chooses the grid and the rows.
import type { TaskMeta } from '../../shared/protocol.ts';
import { createRng } from '../../shared/rng.ts';
import type { GradientEngine, LocalSteps, TaskGradient } from './gradients.ts';
import type { WorkerBehaviour } from './sim-worker.ts';

export const ATTACKS = ['sign-flip', 'noise', 'label-flip', 'alie', 'ipm', 'replay'] as const;
export type AttackName = (typeof ATTACKS)[number];

type Out = { loss: number; update: Float32Array };

/** Φ⁻¹(p) of the standard normal, by bisection on Φ (erf after Abramowitz and Stegun 7.1.26, error < 1.5e-7). */
export function normalQuantile(p: number): number {
  const erf = (x: number) => {
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  };
  const cdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** ALIE's z for n workers of which f are hostile: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n). */
export function alieZ(n: number, f: number): number {
  const s = Math.floor(n / 2 + 1) - f;
  return normalQuantile((n - s) / n);
}

/** An engine for workers that never use their own gradient (noise, ALIE, IPM): no work on this machine. */
export class NoGradients implements GradientEngine {
  constructor(private readonly length: number) {}
  async compute(): Promise<TaskGradient> {
    return { loss: 2.3, grads: new Float32Array(this.length) };
  }
  innerSteps(): Promise<LocalSteps> {
    throw new Error('the attacks are simulated in sync mode only');
  }
  forget(): void {}
}

export interface AdversaryOptions {
  attack: AttackName;
  /** Workers in the round (honest and hostile), for ALIE's z. */
  workers: number;
  hostile: number;
  /** The largest norm the coordinator accepts now (the noise attack sends exactly that). */
  largestAccepted: () => number;
  /** Engine computing gradients on flipped labels (label-flip only). */
  flippedEngine?: GradientEngine;
  /** IPM's ε. */
  epsilon?: number;
  /** Sign flip's k (sends −k·g). */
  signScale?: number;
  /** Replay: rounds back. */
  replayRounds?: number;
  seed?: number;
}

/**
 * @example
 *   const adversary = new Adversary({ attack: 'alie', workers: 25, hostile: 5, largestAccepted: () => 1e4 });
 *   sim.addWorker(profile, 'h1', adversary.honest()); // ×20
 *   sim.addWorker(profile, 'x1', adversary.hostile('x1')); // ×5
 */
export class Adversary {
  /** Honest results by round version (the last few kept). */
  private readonly honestByVersion = new Map<number, Float32Array[]>();
  /** Each hostile worker's own honest gradients by version (replay). */
  private readonly own = new Map<string, Map<number, Float32Array>>();
  private readonly rng;
  /** Results sent by the hostile workers. */
  sent = 0;

  constructor(readonly options: AdversaryOptions) {
    this.rng = createRng(options.seed ?? 7);
  }

  /** An honest worker, whose results the adversary sees. */
  honest(): WorkerBehaviour {
    return {
      computed: (meta, out) => {
        let list = this.honestByVersion.get(meta.version);
        if (!list) this.honestByVersion.set(meta.version, (list = []));
        list.push(out.update);
        for (const v of this.honestByVersion.keys()) if (v < meta.version - 2) this.honestByVersion.delete(v);
      },
    };
  }

  /** A hostile worker. */
  hostile(id: string): WorkerBehaviour {
    const { attack } = this.options;
    const b: WorkerBehaviour = { send: (meta, out) => this.forge(id, meta, out) };
    if (attack === 'label-flip') b.engine = this.options.flippedEngine;
    if (attack === 'replay') b.computed = (meta, out) => this.keepOwn(id, meta.version, out.update);
    return b;
  }

  /** Whether the hostile workers use their own honest gradient (else they need no compute). */
  static computesOwn(attack: AttackName): boolean {
    return attack === 'sign-flip' || attack === 'label-flip' || attack === 'replay';
  }

  private keepOwn(id: string, version: number, update: Float32Array): void {
    let mine = this.own.get(id);
    if (!mine) this.own.set(id, (mine = new Map()));
    mine.set(version, update);
    const back = this.options.replayRounds ?? 100;
    for (const v of mine.keys()) if (v < version - back) mine.delete(v);
  }

  private forge(id: string, meta: TaskMeta, out: Out): Out {
    this.sent++;
    const honest = this.honestByVersion.get(meta.version) ?? [];
    const n = out.update.length;
    switch (this.options.attack) {
      case 'sign-flip': {
        const k = this.options.signScale ?? 10;
        return { loss: out.loss, update: out.update.map((x) => -k * x) };
      }
      case 'label-flip':
        return out; // computed on labels 9 − y by its engine
      case 'noise': {
        const u = new Float32Array(n);
        let sq = 0;
        for (let i = 0; i < n; i++) {
          u[i] = this.rng.normal();
          sq += u[i] * u[i];
        }
        // Just under the largest norm accepted, so that float rounding does not tip it over.
        const s = (0.999 * this.options.largestAccepted()) / Math.sqrt(sq);
        for (let i = 0; i < n; i++) u[i] *= s;
        return { loss: out.loss, update: u };
      }
      case 'alie': {
        if (honest.length < 2) return out;
        const z = alieZ(this.options.workers, this.options.hostile);
        const { mean, std } = moments(honest);
        return { loss: out.loss, update: mean.map((m, j) => m - z * std[j]) };
      }
      case 'ipm': {
        if (honest.length < 1) return out;
        const eps = this.options.epsilon ?? 0.1;
        return { loss: out.loss, update: moments(honest).mean.map((m) => -eps * m) };
      }
      case 'replay': {
        const old = this.own.get(id)?.get(meta.version - (this.options.replayRounds ?? 100));
        return old ? { loss: out.loss, update: old } : out;
      }
    }
  }
}

/** Per-coordinate mean and standard deviation of the rows. */
function moments(rows: readonly Float32Array[]): { mean: Float32Array; std: Float32Array } {
  const n = rows[0].length;
  const mean = new Float32Array(n);
  const std = new Float32Array(n);
  for (const r of rows) for (let j = 0; j < n; j++) mean[j] += r[j];
  for (let j = 0; j < n; j++) mean[j] /= rows.length;
  for (const r of rows) {
    for (let j = 0; j < n; j++) {
      const d = r[j] - mean[j];
      std[j] += d * d;
    }
  }
  for (let j = 0; j < n; j++) std[j] = Math.sqrt(std[j] / rows.length);
  return { mean, std };
}
