// Bans from a run: by the browser id a page keeps in its localStorage (a reload does not escape
// one) and by worker id (a worker that sent no browser id). A program can make up a new browser
// id for every connection: a ban stops a broken or hostile tab, not a determined attacker (the
// robust aggregation rules and the spot checks bound what that one can do).

export interface Ban {
  runId: string;
  /** The browser id, or `worker:<id>`. */
  key: string;
  workerId: string;
  reason: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export class BanList {
  /** runId -> key -> ban. */
  private readonly byRun = new Map<string, Map<string, Ban>>();

  add(ban: Ban): void {
    let run = this.byRun.get(ban.runId);
    if (!run) this.byRun.set(ban.runId, (run = new Map()));
    run.set(ban.key, ban);
  }

  get(runId: string, key: string): Ban | undefined {
    return this.byRun.get(runId)?.get(key);
  }

  /** Lifts a ban; false when there was none. */
  lift(runId: string, key: string): boolean {
    return this.byRun.get(runId)?.delete(key) ?? false;
  }

  of(runId: string): Ban[] {
    return [...(this.byRun.get(runId)?.values() ?? [])];
  }

  /** Replaces a run's bans (restored from the store). */
  restore(runId: string, bans: Ban[]): void {
    this.byRun.set(runId, new Map(bans.map((b) => [b.key, { ...b, runId }])));
  }

  forgetRun(runId: string): void {
    this.byRun.delete(runId);
  }
}
