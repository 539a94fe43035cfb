// Picks the fastest matmul variant per layout on this adapter: times each variant at warm-up on
// a few modest shapes and remembers the choice per adapter (memory, and localStorage where the
// page has it), so that matmul() without a variant uses it. What "fast" means differs a lot
// between SwiftShader and real GPUs, so it is measured, never guessed from the adapter name.
// (ops/matmul.ts imports chosenMatmulVariant from here and this file imports matmul() from
// there; both use the other only inside functions, so the cycle is harmless.)
import { DEFAULT_MATMUL_VARIANT, MATMUL_VARIANTS, matmul, matmulKernel, type MatmulShape, type MatmulVariant } from './ops/matmul.ts';
import type { Gpu } from './runtime.ts';

/** Bump when variants or their meaning change, so stale choices are not reused. */
const TUNING_VERSION = 1;
const STORAGE_KEY = 'crowdtrain.matmul-tuning';

/** 'nn', 'tn', 'nt' or 'tt': the layout (transA, transB) a choice applies to. */
export type MatmulLayout = string;

export function matmulLayout(transA = false, transB = false): MatmulLayout {
  return `${transA ? 't' : 'n'}${transB ? 't' : 'n'}`;
}

export interface TuneOptions {
  /** Timed runs per variant and shape after the warm-up (median taken). Default 3. */
  reps?: number;
  /** Variants to try. Default: all. */
  variants?: readonly MatmulVariant[];
  /** Re-measure even when a choice for this adapter is cached. */
  force?: boolean;
}

type Choices = Record<MatmulLayout, MatmulVariant>;

const memory = new Map<string, Choices>();

/** Identifies an adapter across page loads. */
export function adapterKey(gpu: Gpu): string {
  const { vendor, architecture, device, description } = gpu.info;
  return [vendor, architecture, device, description].join('|');
}

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // e.g. storage disabled for the page
  }
}

function loadStored(): Record<string, { version: number; choices: Choices }> {
  try {
    const raw = storage()?.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : {};
  } catch {
    return {};
  }
}

function cached(key: string): Choices | undefined {
  const hit = memory.get(key);
  if (hit) return hit;
  const stored = loadStored()[key];
  if (stored?.version !== TUNING_VERSION) return undefined;
  const valid = Object.fromEntries(Object.entries(stored.choices).filter(([, v]) => MATMUL_VARIANTS.includes(v)));
  memory.set(key, valid);
  return valid;
}

function remember(key: string, choices: Choices): void {
  memory.set(key, choices);
  const store = storage();
  if (!store) return;
  try {
    const all = loadStored();
    all[key] = { version: TUNING_VERSION, choices };
    store.setItem(STORAGE_KEY, JSON.stringify(all));
  } catch {
    // Quota or privacy mode: the in-memory choice still holds for this page.
  }
}

/** The variant matmul() uses for this layout when the call names none. */
export function chosenMatmulVariant(gpu: Gpu, transA = false, transB = false): MatmulVariant {
  return cached(adapterKey(gpu))?.[matmulLayout(transA, transB)] ?? DEFAULT_MATMUL_VARIANT;
}

/** Forgets every tuned choice (memory and localStorage). */
export function clearMatmulTuning(): void {
  memory.clear();
  try {
    storage()?.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}

/** The small shapes the tuner uses when given none: the MLP's three layouts at batch 64. */
export const DEFAULT_TUNING_SHAPES: readonly MatmulShape[] = [
  { m: 64, n: 128, k: 784, transB: true },
  { m: 128, n: 784, k: 64, transA: true },
  { m: 64, n: 784, k: 128 },
];

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/**
 * Times every variant on `shapes` and keeps, per layout, the one with the least total time.
 * Returns (and caches) the choice per layout; a cached choice is returned without measuring
 * unless `force` or a layout in `shapes` has none yet.
 * @example
 *   await tuneMatmul(gpu, [{ m: 64, n: 128, k: 784, transB: true }]); // { nt: 'reg8x4', ... }
 *   matmul(gpu, { a, b, c, m: 64, n: 128, k: 784, transB: true }); // now uses the choice
 */
export async function tuneMatmul(gpu: Gpu, shapes: readonly MatmulShape[] = DEFAULT_TUNING_SHAPES, opts: TuneOptions = {}): Promise<Choices> {
  const key = adapterKey(gpu);
  const before = cached(key) ?? {};
  const layouts = [...new Set(shapes.map((s) => matmulLayout(s.transA, s.transB)))];
  if (!opts.force && layouts.every((l) => before[l])) return { ...before };

  const reps = opts.reps ?? 3;
  const variants = opts.variants ?? MATMUL_VARIANTS;
  const totals = new Map<MatmulLayout, Map<MatmulVariant, number>>();
  for (const shape of shapes) {
    const layout = matmulLayout(shape.transA, shape.transB);
    const perVariant = totals.get(layout) ?? new Map<MatmulVariant, number>();
    totals.set(layout, perVariant);
    const a = gpu.upload(filler(shape.m * shape.k), 'tune-a');
    const b = gpu.upload(filler(shape.k * shape.n), 'tune-b');
    const c = gpu.buffer(shape.m * shape.n * 4, 'tune-c');
    // Compile every candidate first, in parallel, so that compile time is not timed.
    await Promise.all(variants.map((v) => gpu.pipelines.warm(matmulKernel(v, shape.transA, shape.transB, shape))));
    let best = Infinity;
    for (const variant of variants) {
      const d = matmul(gpu, { ...shape, a, b, c, variant });
      const once = await timeOnce(gpu, () => gpu.submit([d])); // warm-up
      // A variant already 3x slower than the best is not worth more runs (keeps tuning cheap).
      const times = [once];
      if (once < 3 * best) {
        for (let r = 0; r < reps; r++) times.push(await timeOnce(gpu, () => gpu.submit([d])));
      }
      const t = median(times);
      best = Math.min(best, t);
      perVariant.set(variant, (perVariant.get(variant) ?? 0) + t);
    }
    a.destroy();
    b.destroy();
    c.destroy();
  }
  const choices: Choices = { ...before };
  for (const [layout, perVariant] of totals) {
    choices[layout] = [...perVariant.entries()].sort((x, y) => x[1] - y[1])[0][0];
  }
  remember(key, choices);
  return { ...choices };
}

async function timeOnce(gpu: Gpu, submit: () => void): Promise<number> {
  const t0 = performance.now();
  submit();
  await gpu.sync();
  return performance.now() - t0;
}

/** Deterministic values in [-1, 1) (the data does not change a matmul's speed). */
function filler(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 7919) % 2000) / 1000 - 1;
  return out;
}
