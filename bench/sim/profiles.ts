// Simulated workers' profiles: how fast each computes and what its network link is. The
// benchmarks and tests build their grids from these; the figures are stated, not measured.
import type { LinkProfile } from './link.ts';

export interface WorkerProfile {
  /** Examples per second this worker computes (virtual time; its gradients are real). */
  speed: number;
  /** Coordinator to worker. */
  down: LinkProfile;
  /** Worker to coordinator. */
  up: LinkProfile;
}

/** A classroom LAN (wired or good Wi-Fi): 100 Mbit/s down, 40 Mbit/s up, 5 ms one way. */
export const CLASSROOM_LAN: { down: LinkProfile; up: LinkProfile } = {
  down: { mbps: 100, latencyMs: 5 },
  up: { mbps: 40, latencyMs: 5 },
};

/** `n` workers of the same speed on the same link. */
export function equalWorkers(n: number, speed: number, link = CLASSROOM_LAN): WorkerProfile[] {
  return Array.from({ length: n }, () => ({ speed, ...link }));
}

/** `n` workers, the first half at `fast` examples/s and the rest at `slow` (one alone is fast). */
export function mixedWorkers(n: number, fast: number, slow: number, link = CLASSROOM_LAN): WorkerProfile[] {
  return Array.from({ length: n }, (_, i) => ({ speed: i < Math.ceil(n / 2) ? fast : slow, ...link }));
}

/** A volunteer at home: 100 Mbit/s down, 20 Mbit/s up, 50 ms one way to the coordinator. */
export const HOME_BROADBAND: { down: LinkProfile; up: LinkProfile } = {
  down: { mbps: 100, latencyMs: 50 },
  up: { mbps: 20, latencyMs: 50 },
};

/** `n` workers in three speed classes: a quarter at 2 × `speed`, half at `speed`, a quarter at `speed` / 2. */
export function threeSpeedWorkers(n: number, speed: number, link = HOME_BROADBAND): WorkerProfile[] {
  return Array.from({ length: n }, (_, i) => ({ speed: i < n / 4 ? 2 * speed : i < (3 * n) / 4 ? speed : speed / 2, ...link }));
}
