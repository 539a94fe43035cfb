// The "Attacks" subsections of docs/security.md from bench/results/attacks.json (the CNN) and attacks-mlp.json: one row per attack,
// the accuracy with the plain mean and with the public default, each against the clean run. Only
// the text between that subsection's heading and the next heading is rewritten.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AttackRow {
  attack: string;
  aggregation: string;
  accuracy: number;
  hostile: number;
  rounds: number;
  eval_loss: number | null;
  /** Results the learned norm bound scaled down over the run. */
  clipped_results: number;
  /** The bound at the end of the run. */
  norm_bound: number | null;
  /** Results refused (norm above 100 × the bound, or malformed). */
  refused: number;
  seconds: number;
}

export interface AttackResults {
  /** The clean run's accuracy with the mean (no hostile worker). */
  clean_accuracy: number | null;
  rows: AttackRow[];
  settings: Record<string, unknown>;
}

const HEADING = '### Attacks (`npm run bench -- attacks`)';
/** The public default may cost at most this many accuracy points against the clean run. */
export const GOAL_POINTS = 3;

export function attacksMarkdown(r: AttackResults): string {
  const attacks = [...new Set(r.rows.map((x) => x.attack))];
  const aggs = [...new Set(r.rows.map((x) => x.aggregation))];
  const mean = aggs.find((a) => a === 'mean');
  const robust = aggs.find((a) => a !== 'mean');
  const clean = r.clean_accuracy;
  const cell = (attack: string, agg: string | undefined) => {
    const row = r.rows.find((x) => x.attack === attack && x.aggregation === agg);
    if (!row) return '–';
    const pts = clean === null ? '' : ` (${row.accuracy >= clean ? '+' : '−'}${Math.abs(100 * (row.accuracy - clean)).toFixed(1)})`;
    return `${(100 * row.accuracy).toFixed(2)} %${pts}`;
  };
  const lines = [
    `Real training in the virtual-time simulator: ${String(r.settings.workers)}, ${String(r.settings.rounds)} rounds of`,
    `${String(r.settings.model)}; accuracy on ${String(r.settings.accuracy_on)}, in points against the clean run`,
    `with the mean (${clean === null ? '–' : `${(100 * clean).toFixed(2)} %`}). Every row on the same seed.`,
    '',
    `| attack | hostile | ${mean ?? 'mean'} | ${robust ?? 'public default'} |`,
    '| --- | --- | --- | --- |',
    ...attacks.map((a) => `| ${a} | ${r.rows.find((x) => x.attack === a)?.hostile ?? ''} | ${cell(a, mean)} | ${cell(a, robust)} |`),
  ];
  if (clean !== null && robust) {
    const worst = r.rows.filter((x) => x.aggregation === robust && x.hostile > 0).map((x) => ({ a: x.attack, d: 100 * (clean - x.accuracy) }));
    const missed = worst.filter((w) => w.d > GOAL_POINTS);
    lines.push(
      '',
      missed.length === 0
        ? `Goal met: with the public default no attack costs more than ${GOAL_POINTS} points against the clean run (worst: ${Math.max(...worst.map((w) => w.d)).toFixed(1)}).`
        : `Goal not met for: ${missed.map((w) => `${w.a} (−${w.d.toFixed(1)} points)`).join(', ')}; the goal is at most ${GOAL_POINTS} points below the clean run.`,
    );
    const broke = r.rows.filter((x) => x.aggregation === mean && x.hostile > 0 && 100 * (clean - x.accuracy) > GOAL_POINTS).map((x) => x.attack);
    lines.push(`With the mean, ${broke.length ? `these attacks succeed (more than ${GOAL_POINTS} points lost): ${broke.join(', ')}` : 'no attack costs more than 3 points'}.`);
  }
  return lines.join('\n');
}

/** Rewrites the body of the Attacks subsection of docs/security.md. */
export function writeAttacksSection(root: string, r: AttackResults, notes = '', heading = HEADING): void {
  const file = join(root, 'docs', 'security.md');
  const doc = readFileSync(file, 'utf8');
  const start = doc.indexOf(heading);
  if (start < 0) throw new Error(`docs/security.md has no "${heading}" heading`);
  const bodyAt = start + heading.length;
  const next = doc.slice(bodyAt).search(/\n#{2,3} /);
  const end = next < 0 ? doc.length : bodyAt + next;
  const body = `\n\n${attacksMarkdown(r)}${notes ? `\n\n${notes}` : ''}\n`;
  writeFileSync(file, doc.slice(0, bodyAt) + body + doc.slice(end));
}
