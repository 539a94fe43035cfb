// Spot-check recomputation, BOINC's quorum for one task: the same examples on the same parameter
// version given to a second worker; the two results compared within a tolerance; a disagreement
// settled by a third; the odd one out found wrong. Pure: the round (rounds/sync-rounds.ts) holds
// the quorums, hands their tasks out and folds the agreed copy; trust.ts keeps the record.
import { foldUpdate, type UpdateCoding } from '../../shared/update-codec.ts';
import type { TaskResult } from '../../shared/protocol.ts';

/**
 * Largest relative L2 difference ‖a − b‖ / max(‖a‖, ‖b‖) between two results of one task that
 * still counts as agreement, by the coding results come in. Measured (docs/security.md,
 * test/e2e-spot-checks.test.ts, test/spot-checks.test.ts): the WebGPU (SwiftShader) and CPU
 * backends' gradients of the same task differ by 1.2e-7 on an MLP (float32 sums in another order)
 * and by up to 4.3e-5 on the example CNN (a max-pool whose inputs tie to the last bit can route
 * its gradient to another position on each backend); two CPU workers' fp16 results, each with its
 * own error-feedback residual, by up to 4.8e-4. The tolerances leave a margin of 40x (fp16) and
 * 100x (float32) and still refuse a result scaled by 1.01 (float32: a difference of 0.0099) or
 * 1.1 (fp16: 0.09). int8 and top-k results are not compared: their residuals differ between
 * workers by as much as the results themselves.
 */
export const AGREEMENT_TOLERANCE: Partial<Record<UpdateCoding['kind'], number>> = { none: 5e-3, fp16: 2e-2 };

/** Whether results of this coding can be compared (see AGREEMENT_TOLERANCE). */
export function checkable(coding: UpdateCoding): boolean {
  return AGREEMENT_TOLERANCE[coding.kind] !== undefined;
}

/** ‖a − b‖ / max(‖a‖, ‖b‖); 0 when both are zero. */
export function relativeDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    d += (x - y) * (x - y);
    na += x * x;
    nb += y * y;
  }
  const scale = Math.sqrt(Math.max(na, nb));
  return scale === 0 ? 0 : Math.sqrt(d) / scale;
}

/** A result held until its quorum decides: the bytes as they came (no copy) and their meta. */
export interface HeldResult {
  workerId: string;
  /** Identity the worker's trust is kept under (trust.ts). */
  key: string;
  backend: string;
  meta: TaskResult;
  bytes: Uint8Array;
  /** Decoded on first comparison. */
  values?: Float32Array;
}

/** One task's quorum: the examples, who was given them, what came back, how many results it wants. */
export interface Quorum {
  id: string;
  version: number;
  indices: Uint32Array;
  /** Identities that were given the task (a worker never checks itself, nor a tab of its own browser). */
  holders: Set<string>;
  /** Tasks out now. */
  open: Set<string>;
  results: HeldResult[];
  /** 2, then 3 after a disagreement. */
  wanted: number;
  settled: boolean;
  /** Largest relative difference seen between two results (for calibration and the admin page). */
  maxDifference: number;
}

export type Verdict =
  /** Two or more agree: fold `agreed`; `wrong` disagree with them. */
  | { kind: 'agreed'; agreed: HeldResult; agreeing: HeldResult[]; wrong: HeldResult[]; difference: number }
  /** Two results disagree: a third worker decides. */
  | { kind: 'third'; difference: number }
  /** Three results, no two agree: nothing is folded and no one is struck. */
  | { kind: 'inconclusive'; difference: number }
  | { kind: 'waiting' };

function decoded(r: HeldResult, coding: UpdateCoding, n: number): Float32Array {
  if (!r.values) {
    r.values = new Float32Array(n);
    foldUpdate(coding, r.bytes, n, 1, r.values);
  }
  return r.values;
}

/**
 * The verdict on a quorum's results so far. The agreed copy is the earliest of the largest group
 * that agrees with one another (with three results, the two that agree; the third is the odd one out).
 */
export function judge(q: Quorum, coding: UpdateCoding, n: number, tolerance = AGREEMENT_TOLERANCE[coding.kind] ?? 0): Verdict {
  const rs = q.results;
  if (rs.length < 2) return { kind: 'waiting' };
  const v = rs.map((r) => decoded(r, coding, n));
  let worst = 0;
  let best: { i: number; with: number[] } | null = null;
  for (let i = 0; i < rs.length; i++) {
    const agree: number[] = [];
    for (let j = 0; j < rs.length; j++) {
      if (i === j) continue;
      const d = relativeDifference(v[i], v[j]);
      worst = Math.max(worst, d);
      if (d <= tolerance) agree.push(j);
    }
    if (agree.length > 0 && (!best || agree.length > best.with.length)) best = { i, with: agree };
  }
  q.maxDifference = Math.max(q.maxDifference, worst);
  if (best) {
    const group = new Set([best.i, ...best.with]);
    // The agreeing difference: largest within the group (what calibration watches).
    let within = 0;
    for (const i of group) for (const j of group) if (i < j) within = Math.max(within, relativeDifference(v[i], v[j]));
    return { kind: 'agreed', agreed: rs[Math.min(...group)], agreeing: rs.filter((_, i) => group.has(i)), wrong: rs.filter((_, i) => !group.has(i)), difference: within };
  }
  return rs.length >= 3 ? { kind: 'inconclusive', difference: worst } : { kind: 'third', difference: worst };
}

/** Whether the quorum still needs a worker to compute its task. */
export function needsWorker(q: Quorum): boolean {
  return !q.settled && q.results.length + q.open.size < q.wanted;
}
