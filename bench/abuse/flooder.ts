// One flood against the coordinator, in a process of its own (bench/abuse.node.ts forks it) so
// that its sending does not share the measuring process's event loop. Speaks raw frames
// (raw-socket.ts): `perSec` messages a second of one kind from one connection, or many
// connections from one address. Reports progress to its parent; it never decides what passed.
import { PROTOCOL_VERSION, WORKER_NAMESPACE } from '../../shared/protocol.ts';
import { openRaw, until, type RawSocket } from './raw-socket.ts';

/** Every kind of flood: the worker events, a handshake repeated, unknown events, other namespaces, many sockets. */
export const FLOOD_KINDS = ['hello', 'ready', 'result', 'status', 'relay', 'chunk', 'unknown-event', 'admin', 'board', 'main-namespace', 'sockets'] as const;
export type FloodKind = (typeof FLOOD_KINDS)[number];

export type ToFlooder = { type: 'start'; url: string; kind: FloodKind; perSec: number; seconds: number; runId: string; sockets: number };
export type FromFlooder =
  | { type: 'started'; at: number; joined: boolean }
  | { type: 'progress'; sent: number; at: number }
  | { type: 'closed'; sent: number; at: number; received: string[] }
  /** The many-sockets flood: how its sockets fared. */
  | { type: 'sockets'; opened: number; accepted: number; refused: number; closedByServer: number; lastAnswerAt: number; started: number; codes: Record<string, number> }
  | { type: 'done'; sent: number; at: number };

const send = (m: FromFlooder) => process.send?.(m);
const hello = JSON.stringify({ protocol: PROTOCOL_VERSION, backend: 'cpu', nickname: 'flood' });
const ns = WORKER_NAMESPACE;
const bin = new Uint8Array(64);

/** The frames of message number `i` of a flood of `kind`. */
function messageOf(kind: FloodKind, i: number, runId: string): (string | Uint8Array)[] {
  const run = JSON.stringify(runId);
  const ph = '{"_placeholder":true,"num":0}';
  switch (kind) {
    case 'hello':
      return [`40${ns},${hello}`];
    case 'ready':
      return [`42${ns},["ready",{"runId":${run},"version":0}]`];
    case 'status':
      return [`42${ns},["status",{"paused":false,"cap":1,"samplesPerSec":1,"nickname":"flood-${i}"}]`];
    case 'result':
      return [`451-${ns},${i}["result",{"taskId":"forged-${i}","runId":${run},"version":0,"samples":16,"loss":1},${ph}]`, bin];
    case 'chunk':
      return [`451-${ns},["chunk",{"stream":"s${i % 4}","index":0,"count":2,"total":128},${ph}]`, bin];
    case 'relay':
      return [`451-${ns},["relay",{"taskId":"forged","mb":0,"kind":"activation"},${ph}]`, bin];
    case 'unknown-event':
      return [`42${ns},["hello",{"n":${i}}]`];
    case 'admin':
      return ['40/admin,'];
    case 'board':
      return ['40/board,{"runId":"no-such-run"}'];
    case 'main-namespace':
      return [`42["status",{"n":${i}}]`];
    case 'sockets':
      return [];
  }
}

/** Whether the flood first joins a namespace, and which. */
function joinOf(kind: FloodKind): string | null {
  if (kind === 'main-namespace') return '40';
  if (kind === 'hello' || kind === 'admin' || kind === 'board' || kind === 'sockets') return null;
  return `40${ns},${hello}`;
}

async function floodOne(m: ToFlooder): Promise<void> {
  const s = openRaw(m.url);
  let sent = 0;
  let closedAt = 0;
  void s.closed.then((at) => (closedAt = at));
  if (!(await s.opened)) {
    send({ type: 'closed', sent, at: Date.now(), received: s.received });
    return;
  }
  const join = joinOf(m.kind);
  let joined = false;
  if (join) {
    s.packet(join);
    joined = await until(() => s.received.some((r) => r.startsWith(join.slice(0, 2 + (join === '40' ? 0 : ns.length)))), 5000);
  }
  const started = Date.now();
  send({ type: 'started', at: started, joined });
  const end = started + m.seconds * 1000;
  const progress = setInterval(() => send({ type: 'progress', sent, at: Date.now() }), 100);
  while (!closedAt && Date.now() < end) {
    const due = ((Date.now() - started) * m.perSec) / 1000;
    // While the server is not reading, its kernel buffers and then ours fill: stop adding.
    while (sent < due && s.ws.bufferedAmount < 32 << 20 && s.isOpen()) {
      for (const f of messageOf(m.kind, sent, m.runId)) s.frame(f);
      sent++;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  clearInterval(progress);
  if (closedAt) send({ type: 'closed', sent, at: closedAt, received: s.received.slice(0, 5) });
  else send({ type: 'done', sent, at: Date.now() });
  s.ws.terminate();
}

/** `m.sockets` worker sockets from this address, opened as fast as the coordinator takes them. */
async function floodSockets(m: ToFlooder): Promise<void> {
  const started = Date.now();
  const sockets: RawSocket[] = [];
  let accepted = 0;
  let refused = 0;
  let closedByServer = 0;
  let lastAnswerAt = started;
  const codes: Record<string, number> = {};
  let stopping = false;
  const one = async () => {
    const s = openRaw(m.url);
    sockets.push(s);
    void s.closed.then(() => {
      if (!stopping) closedByServer++;
    });
    if (!(await s.opened)) return;
    s.packet(`40${ns},${hello}`);
    if (await until(() => s.received.some((r) => r.startsWith(`40${ns},`) || r.startsWith(`44${ns},`)), 15_000)) {
      lastAnswerAt = Date.now();
      const answer = s.received.find((r) => r.startsWith(`40${ns},`) || r.startsWith(`44${ns},`))!;
      if (answer.startsWith('40')) accepted++;
      else {
        refused++;
        const code = /"code":"([a-z_]+)"/.exec(answer)?.[1] ?? 'other';
        codes[code] = (codes[code] ?? 0) + 1;
      }
    }
  };
  send({ type: 'started', at: started, joined: false });
  await Promise.all(Array.from({ length: m.sockets }, one));
  send({ type: 'sockets', opened: sockets.length, accepted, refused, closedByServer, lastAnswerAt, started, codes });
  // Hold them for the rest of the window (the accepted ones are workers that never answer a task).
  await new Promise((r) => setTimeout(r, Math.max(0, started + m.seconds * 1000 - Date.now())));
  stopping = true;
  for (const s of sockets) s.ws.terminate();
  send({ type: 'done', sent: sockets.length, at: Date.now() });
}

process.on('message', (m: ToFlooder) => {
  if (m.type !== 'start') return;
  void (m.kind === 'sockets' ? floodSockets(m) : floodOne(m)).then(
    () => setTimeout(() => process.exit(0), 50),
    (err: unknown) => {
      console.error(`[abuse] flooder ${m.kind} failed: ${(err as Error).stack}`);
      process.exit(1);
    },
  );
});
