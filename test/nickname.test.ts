// Nicknames and the leaderboard: what sanitizeNickname keeps and drops, and the per-nickname
// contributions the coordinator keeps in its store (over REST, across a restart, after a rename).
// The pages showing them in Chromium are checked in nickname-page.test.ts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { WorkerClient } from '../client/worker/worker-client.ts';
import { NICKNAME_MAX, randomNickname, sanitizeNickname } from '../shared/nickname.ts';
import { SqliteStore } from '../server/store/sqlite-store.ts';
import { startCoordinator, startCpuWorker, waitFor, type TestCoordinator } from './helpers/coordinator.ts';

describe('sanitizeNickname', () => {
  test('cuts an over-long nickname to 24 code points', () => {
    expect(sanitizeNickname('a'.repeat(100))).toBe('a'.repeat(NICKNAME_MAX));
    expect(NICKNAME_MAX).toBe(24);
    // Trailing space left by the cut is trimmed.
    expect(sanitizeNickname(`${'b'.repeat(23)} tail`)).toBe('b'.repeat(23));
  });

  test('strips control and format characters, turns line breaks into spaces and trims', () => {
    expect(sanitizeNickname('Ada\u0007')).toBe('Ada');
    expect(sanitizeNickname('\u202eAda Lovelace')).toBe('Ada Lovelace'); // right-to-left override
    expect(sanitizeNickname('Ada\nLovelace')).toBe('Ada Lovelace');
    expect(sanitizeNickname('  Ada \t\u2028  Lovelace\r\n ')).toBe('Ada Lovelace');
    expect(sanitizeNickname('A\u200bd\u200da\ufeff\u0000')).toBe('Ada');
    expect(sanitizeNickname('\u0007\u202e\n')).toBeNull();
  });

  test('keeps markup as plain text', () => {
    expect(sanitizeNickname('<b>x</b>')).toBe('<b>x</b>');
    expect(sanitizeNickname('<img src=x onerror=alert(1)>')).toBe('<img src=x onerror=alert'); // 24 code points
    expect(sanitizeNickname('"Bobby" & \'Tables\'')).toBe('"Bobby" & \'Tables\'');
  });

  test('never splits an emoji', () => {
    const cut = sanitizeNickname('😀'.repeat(30))!;
    expect([...cut]).toHaveLength(24);
    expect(cut).toBe('😀'.repeat(24));
    // The 24th code point would be the first half of a two-code-point emoji sequence: left out whole.
    const name = `${'x'.repeat(23)}👍🏽`;
    expect(sanitizeNickname(name)).toBe('x'.repeat(23));
    expect(sanitizeNickname('👩‍💻 dev')).toBe('👩‍💻 dev'); // the joiner inside an emoji stays
    expect(sanitizeNickname('e\u0301')).toBe('é'); // NFC
  });

  test('empty or not a string is no nickname', () => {
    for (const raw of ['', '   ', '\u200b', undefined, null, 42, {}]) expect(sanitizeNickname(raw)).toBeNull();
  });

  test('random nicknames are friendly, and already clean', () => {
    let i = 0;
    const seq = [0, 0.999, 0.5, 0.25];
    expect(randomNickname(() => seq[i++ % seq.length])).toMatch(/^[A-Z][a-z]+ [A-Z][a-z]+$/);
    for (let k = 0; k < 50; k++) {
      const n = randomNickname();
      expect(sanitizeNickname(n)).toBe(n);
    }
  });
});

interface Row {
  nickname: string;
  samples: number;
  rounds: number;
  workers: number;
}

describe('leaderboard', () => {
  const workers: WorkerClient[] = [];
  const coords: TestCoordinator[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) w.stop();
    for (const c of coords.splice(0)) await c.close();
  });

  // Fixed task sizes: every task holds 16 examples, so a nickname's samples are 16 per task.
  const run = { batchPerTask: 16, evalEvery: 1000, checkpointEvery: 1000, sync: { minWorkers: 2, roundDeadlineMs: 15_000, taskSizing: 'fixed' as const } };
  const leaderboard = async (c: TestCoordinator, runId: string): Promise<Row[]> => {
    const res = await c.app.inject(`/api/runs/${runId}/leaderboard`);
    expect(res.statusCode).toBe(200);
    return res.json().leaderboard;
  };

  test('counts samples and rounds per nickname over REST, and survives a coordinator restart', async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), 'crowdtrain-leaderboard-')), 'crowdtrain.db');
    const coord = await startCoordinator({ store: new SqliteStore(dbPath), defaultRun: run });
    coords.push(coord);
    const runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
    // Markup and a control character in a hello: stored as the sanitised text.
    workers.push(startCpuWorker(coord.url, { hello: { nickname: 'Ada' } }), startCpuWorker(coord.url, { hello: { nickname: '<b>Grace</b>\u0007 ' } }), startCpuWorker(coord.url));
    const scheduler = coord.app.crowdtrain.scheduler;
    await waitFor(() => scheduler.workersOf(runId).length === 3 && scheduler.workersOf(runId).every((w) => w.tasksDone >= 3), 60_000, 'three workers to do 3 tasks each');

    const rows = await leaderboard(coord, runId);
    expect(rows.map((r) => r.nickname).sort()).toEqual(['<b>Grace</b>', 'Ada', 'anonymous']);
    for (const r of rows) {
      expect(r.workers).toBe(1);
      expect(r.rounds).toBeGreaterThanOrEqual(3);
      expect(r.samples).toBe(r.rounds * 16);
    }
    expect(rows.map((r) => r.samples)).toEqual([...rows.map((r) => r.samples)].sort((a, b) => b - a));
    const ada = rows.find((r) => r.nickname === 'Ada')!;
    const live = scheduler.workersOf(runId).find((w) => w.hello.nickname === 'Ada')!;
    expect(ada.samples).toBe(live.samples);

    expect((await coord.app.inject('/api/runs/no-such-run/leaderboard')).statusCode).toBe(404);

    for (const w of workers.splice(0)) w.stop();
    await waitFor(() => scheduler.workersOf(runId).length === 0, 10_000, 'the workers to leave');
    const before = await leaderboard(coord, runId);
    await coord.close();
    coords.pop();

    const again = await startCoordinator({ store: new SqliteStore(dbPath), defaultRun: run });
    coords.push(again);
    expect(await leaderboard(again, runId)).toEqual(before);
  }, 120_000);

  test('a nickname changed through a status message shows up, and one tab twice under the same name adds up', async () => {
    const coord = await startCoordinator({ defaultRun: run });
    coords.push(coord);
    const runId = [...coord.app.crowdtrain.scheduler.runs.keys()][0];
    const scheduler = coord.app.crowdtrain.scheduler;
    const a = startCpuWorker(coord.url, { hello: { nickname: 'Ada' } });
    const b = startCpuWorker(coord.url, { hello: { nickname: 'Ada' } });
    workers.push(a, b);
    await waitFor(() => scheduler.workersOf(runId).length === 2 && scheduler.workersOf(runId).every((w) => w.tasksDone >= 2), 60_000, 'two tasks each');
    let rows = await leaderboard(coord, runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ nickname: 'Ada', workers: 2 });

    expect(b.setNickname('  Lin\u202e  Lin\n')).toBe('Lin Lin');
    const bId = b.stats.workerId!;
    await waitFor(() => scheduler.workers.get(bId)?.hello.nickname === 'Lin Lin', 5000, 'the rename to reach the coordinator');
    // Before b does another task: the rename alone updates the store.
    rows = await leaderboard(coord, runId);
    expect(rows.map((r) => r.nickname).sort()).toEqual(['Ada', 'Lin Lin']);
    expect(rows.find((r) => r.nickname === 'Lin Lin')).toMatchObject({ workers: 1 });

    b.setNickname('\u0007');
    await waitFor(() => scheduler.workers.get(bId)?.hello.nickname === undefined, 5000, 'the nickname to be cleared');
    rows = await leaderboard(coord, runId);
    expect(rows.map((r) => r.nickname).sort()).toEqual(['Ada', 'anonymous']);
  }, 90_000);
});
