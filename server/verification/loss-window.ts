// Whether a result's loss is plausible: finite, ≥ 0, and not absurdly far above the losses the
// run's workers reported lately. The loss is shown on every page and drives no update, but a worker
// that reports 1e9 would wreck the loss chart of everyone watching; so would one that reports NaN.

/** Results remembered per run. */
const WINDOW = 64;
/** Results needed before the bound applies (the first rounds' losses vary most). */
const MIN_SEEN = 8;

/**
 * The bound: 10 × the recent median plus 25 nats. A one-example batch can honestly cost 20 nats
 * (a confident mistake); a hostile report of 1e6 is refused.
 */
export function lossBound(median: number): number {
  return 10 * median + 25;
}

export class LossWindow {
  private readonly recent: number[] = [];

  /** Why `loss` is not plausible, or null. */
  check(loss: number): string | null {
    if (!Number.isFinite(loss) || loss < 0) return `loss must be a finite number >= 0, got ${loss}`;
    if (this.recent.length < MIN_SEEN) return null;
    const median = this.median();
    const bound = lossBound(median);
    if (loss > bound) return `loss ${loss.toPrecision(4)} is implausible: the run's recent results have a median loss of ${median.toPrecision(4)}, at most ${bound.toPrecision(4)} is accepted`;
    return null;
  }

  /** Remembers the loss of a result that was used. */
  observe(loss: number): void {
    this.recent.push(loss);
    if (this.recent.length > WINDOW) this.recent.shift();
  }

  private median(): number {
    const s = [...this.recent].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
}
