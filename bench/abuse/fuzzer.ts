// The fuzzer, in a process of its own (bench/abuse.node.ts forks it, so that generating cases
// does not slow the process that times /healthz): sends fast-check's frame cases over raw
// WebSockets joined to the workers' namespace, then its request cases to every REST route.
// Reports counts to its parent; whether the coordinator survived is the parent's to judge.
import fc from 'fast-check';
import { WORKER_NAMESPACE } from '../../shared/protocol.ts';
import { bodyCase, breakingFrameCase, helloCase, pathOf, safeFrameCase, type FrameCase } from './fuzz-cases.ts';
import { openRaw, until, type RawSocket } from './raw-socket.ts';

export type ToFuzzer = { type: 'start'; url: string; runId: string; frames: number; bodies: number; seed: number; adminToken: string; connections: number };
export type FromFuzzer =
  | { type: 'progress'; phase: 'frames' | 'bodies'; done: number }
  | {
      type: 'done';
      frames: { cases: number; frames: number; bytes: number; connections: number; closedByServer: number; refusedJoins: number; kinds: Record<string, number> };
      bodies: { requests: number; bytes: number; statuses: Record<string, number>; failures: number; serverErrors: { what: string; status: number; body: string }[] };
    };

const send = (m: FromFuzzer) => process.send?.(m);
/**
 * Cases per connection: up to this many that leave it open (under every per-event burst), then
 * one that ends it.
 */
const CASES_PER_CONNECTION = 200;

/** Cases drawn in batches: fc.sample with a seed per batch, so a run is reproducible. */
function* cases<T>(arb: fc.Arbitrary<T>, n: number, seed: number): Generator<T> {
  for (let done = 0, batch = 0; done < n; batch++) {
    const k = Math.min(1000, n - done);
    for (const c of fc.sample(arb, { numRuns: k, seed: seed + batch })) yield c;
    done += k;
  }
}

/** Sends `m.frames` frame cases over `m.connections` connections at a time; counts what happened. */
export async function fuzzFrames(m: Pick<ToFuzzer, 'url' | 'runId' | 'frames' | 'seed' | 'connections'>) {
  const stats = { cases: 0, frames: 0, bytes: 0, connections: 0, closedByServer: 0, refusedJoins: 0, kinds: {} as Record<string, number> };
  const safe = cases(safeFrameCase, m.frames, m.seed);
  const breaking = cases(breakingFrameCase, m.frames, m.seed + 3);
  const lengths = cases(fc.integer({ min: 0, max: CASES_PER_CONNECTION }), m.frames, m.seed + 5);
  const hellos = cases(helloCase, m.frames, m.seed + 7);
  const run = JSON.stringify(m.runId);
  let left = m.frames;
  const next = (last: boolean): FrameCase | null => {
    if (left <= 0) return null;
    left--;
    return (last ? breaking : safe).next().value ?? null;
  };
  const lane = async () => {
    while (left > 0) {
      const s: RawSocket = openRaw(m.url);
      stats.connections++;
      let closedByServer = false;
      let mine = false;
      void s.closed.then(() => (closedByServer = !mine));
      if (!(await s.opened)) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const hello = hellos.next().value ?? '{}';
      s.packet(`40${WORKER_NAMESPACE},${hello}`);
      await until(() => !s.isOpen() || s.received.some((r) => r.startsWith(`40${WORKER_NAMESPACE}`) || r.startsWith(`44${WORKER_NAMESPACE}`)), 5000);
      if (s.received.some((r) => r.startsWith(`44${WORKER_NAMESPACE}`))) stats.refusedJoins++;
      const length = lengths.next().value ?? CASES_PER_CONNECTION;
      for (let i = 0; i <= length && s.isOpen(); i++) {
        const c = next(i === length);
        if (!c) break;
        stats.cases++;
        const kind = c.what.split(':')[0];
        stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
        for (const f of c.frames) {
          const frame = typeof f === 'string' ? f.replaceAll('"RUN"', run) : f;
          s.frame(frame);
          stats.frames++;
          stats.bytes += frame.length;
        }
        // Do not outrun the coordinator: wait for the socket to drain now and then.
        if (s.ws.bufferedAmount > 1 << 20) await until(() => s.ws.bufferedAmount < 1 << 18 || !s.isOpen(), 10_000);
        if (c.breaking) break;
        if (i % 25 === 24) await new Promise((r) => setTimeout(r, 1));
        if (stats.cases % 2000 === 0) send({ type: 'progress', phase: 'frames', done: stats.cases });
      }
      // Wait for what was sent to be read (or refused) before the next connection.
      await until(() => s.ws.bufferedAmount === 0 || !s.isOpen(), 10_000);
      await new Promise((r) => setTimeout(r, 20));
      mine = true;
      if (closedByServer) stats.closedByServer++;
      s.ws.terminate();
      await s.closed;
    }
  };
  await Promise.all(Array.from({ length: m.connections }, lane));
  return stats;
}

/** Sends `m.bodies` requests, four at a time; counts the answers and keeps the first 5xx ones. */
export async function fuzzBodies(m: Pick<ToFuzzer, 'url' | 'runId' | 'bodies' | 'seed' | 'adminToken'>) {
  const stats = { requests: 0, bytes: 0, statuses: {} as Record<string, number>, failures: 0, serverErrors: [] as { what: string; status: number; body: string }[] };
  const source = cases(bodyCase, m.bodies, m.seed + 1);
  const lane = async () => {
    for (let r = source.next(); !r.done; r = source.next()) {
      const c = r.value;
      const headers: Record<string, string> = {};
      if (c.contentType) headers['content-type'] = c.contentType;
      if (c.admin) headers.authorization = `Bearer ${m.adminToken}`;
      stats.requests++;
      stats.bytes += c.body?.length ?? 0;
      try {
        const res = await fetch(`${m.url}${pathOf(c, m.runId)}`, { method: c.method, headers, body: c.body as string | undefined, signal: AbortSignal.timeout(30_000) });
        const text = await res.text();
        stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
        if (res.status >= 500 && stats.serverErrors.length < 20) stats.serverErrors.push({ what: `${c.method} ${pathOf(c, m.runId).slice(0, 80)} ${c.what}`, status: res.status, body: text.slice(0, 300) });
      } catch {
        // The server may close a connection on a body it will not read (413): that is an answer too.
        stats.failures++;
      }
      if (stats.requests % 1000 === 0) send({ type: 'progress', phase: 'bodies', done: stats.requests });
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));
  return stats;
}

process.on('message', (m: ToFuzzer) => {
  if (m.type !== 'start') return;
  void (async () => {
    const frames = await fuzzFrames(m);
    const bodies = await fuzzBodies(m);
    send({ type: 'done', frames, bodies });
    setTimeout(() => process.exit(0), 50);
  })().catch((err: unknown) => {
    console.error(`[abuse] fuzzer failed: ${(err as Error).stack}`);
    process.exit(1);
  });
});
