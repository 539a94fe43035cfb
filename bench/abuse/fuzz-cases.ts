// What the fuzzer sends, as fast-check arbitraries: Socket.IO frames (well-formed envelopes with
// wrong fields, broken envelopes, attachment counts and placeholders that do not match, other
// namespaces, raw garbage, oversized frames) and HTTP requests to every REST route (JSON,
// multipart, YAML text; malformed, huge, deeply nested, prototype keys). No sending here.
import fc from 'fast-check';
import { PROTOCOL_VERSION, WORKER_NAMESPACE } from '../../shared/protocol.ts';

/** One frame to send and whether the server is expected to close the connection after it. */
export interface FrameCase {
  frames: (string | Uint8Array)[];
  /** A frame the Socket.IO parser rejects: the connection ends, so it goes last on one. */
  breaking: boolean;
  what: string;
}

const ns = WORKER_NAMESPACE;
/** Largest Socket.IO message the coordinator accepts (app.ts MAX_MESSAGE_BYTES). */
export const MAX_FRAME = 16 << 20;

/** Text that breaks whatever parses it: deep nesting, prototype keys, huge numbers, lone surrogates. */
const nastyText = fc.oneof(
  fc.integer({ min: 1, max: 200_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 1, max: 50_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.constantFrom('{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"polluted":true}}}', '{"__proto__":null}', '{"toString":1,"valueOf":"x","hasOwnProperty":2}'),
  fc.constantFrom('1e400', '-0', '"\\ud800"', 'NaN', 'Infinity', 'null', 'true', '""', '[]', '{}', '{"a":1,"a":2}'),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

/** A JSON value of the wrong sort for a field (or of the right sort but out of range). */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, '', 'x'.repeat(100_000), -1, 0, 1e308, -1e308, 2 ** 53 + 1, 0.5, [], {}, [1, 2, 3], { __proto__: null, x: 1 }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ maxLength: 100 }),
  fc.double(),
  fc.integer(),
);

/** Valid messages of every worker event, so that one wrong field is all that is wrong. */
const templates: Record<string, Record<string, unknown>> = {
  ready: { runId: 'RUN', version: 0 },
  status: { paused: false, cap: 1, samplesPerSec: 100, nickname: 'fuzz' },
  result: { taskId: 't', runId: 'RUN', version: 0, samples: 16, loss: 1, computeMs: 1, allocatedBytes: 1, coding: 'none', chunks: 's' },
  chunk: { stream: 's', index: 0, count: 2, total: 128 },
  relay: { taskId: 't', mb: 0, kind: 'activation' },
};
const binaryEvents = new Set(['result', 'chunk', 'relay']);

/** JSON with keys JSON.stringify would never write as own keys (`__proto__`). */
function withProtoKeys(obj: Record<string, unknown>, key: string, value: unknown): string {
  const body = JSON.stringify(obj);
  return `{${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}${body.length > 2 ? ',' : ''}${body.slice(1)}`;
}

/** A worker event with each field replaced, dropped, or joined by an extra or prototype key. */
const wrongEvent = fc
  .record({
    event: fc.constantFrom(...Object.keys(templates)),
    mutation: fc.constantFrom('replace', 'drop', 'extra', 'proto', 'constructor', 'not-an-object', 'args'),
    field: fc.nat(20),
    value: wrongValue,
    attachments: fc.integer({ min: 0, max: 3 }),
    ackId: fc.option(fc.nat(), { nil: undefined }),
    bytes: fc.integer({ min: 0, max: 4096 }),
  })
  .map(({ event, mutation, field, value, attachments, ackId, bytes }): FrameCase => {
    const t = { ...templates[event] };
    const keys = Object.keys(t);
    const key = keys[field % keys.length];
    let meta: string;
    if (mutation === 'replace') meta = JSON.stringify({ ...t, [key]: value });
    else if (mutation === 'drop') meta = JSON.stringify(Object.fromEntries(keys.filter((k) => k !== key).map((k) => [k, t[k]])));
    else if (mutation === 'extra') meta = JSON.stringify({ ...t, extra: value });
    else if (mutation === 'proto') meta = withProtoKeys(t, '__proto__', value);
    else if (mutation === 'constructor') meta = withProtoKeys(t, 'constructor', { prototype: value });
    else if (mutation === 'not-an-object') meta = JSON.stringify(value) ?? 'null';
    else meta = `${JSON.stringify(t)},${JSON.stringify(value) ?? 'null'},${JSON.stringify(value) ?? 'null'}`;
    const ack = ackId === undefined ? '' : String(ackId);
    // A binary event's data is a placeholder and an attachment; here their numbers may not match.
    const wantsBinary = binaryEvents.has(event);
    const placeholders = wantsBinary ? [`{"_placeholder":true,"num":${attachments > 0 ? attachments - 1 : 0}}`] : [];
    const frames: (string | Uint8Array)[] = [];
    if (attachments > 0) {
      frames.push(`45${attachments}-${ns},${ack}["${event}",${[meta, ...placeholders].join(',')}]`);
      for (let i = 0; i < attachments; i++) frames.push(new Uint8Array(bytes));
    } else {
      frames.push(`42${ns},${ack}["${event}",${[meta, ...placeholders].join(',')}]`);
    }
    return { frames, breaking: false, what: `${event}:${mutation}` };
  });

/** A Socket.IO packet whose envelope is broken in one way or another. */
const brokenPacket = fc
  .record({
    type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(5)),
    attachments: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constantFrom('x', '', '1e3', '99999999999')),
    nsp: fc.constantFrom(ns, '/admin', '/board', '/', '/nope', '', `${ns}/../admin`, '/' + 'n'.repeat(1000)),
    ack: fc.constantFrom('', '0', '42', '999999999999999999999', '-1'),
    payload: fc.oneof(nastyText, fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? '')),
    binaries: fc.integer({ min: 0, max: 3 }),
  })
  .map(({ type, attachments, nsp, ack, payload, binaries }): FrameCase => {
    const binary = type === 5 || type === 6;
    const head = `4${type}${binary ? `${attachments}-` : ''}${nsp === '/' ? '' : `${nsp},`}${ack}`;
    const frames: (string | Uint8Array)[] = [head + payload];
    for (let i = 0; i < binaries; i++) frames.push(new Uint8Array(16));
    return { frames, breaking: true, what: `packet:${type}` };
  });

/** Engine.IO-level junk: other packet types, binary without a packet, raw bytes. */
const engineJunk = fc.oneof(
  fc.constantFrom('1', '2', '3', '5', '6', '2probe', '3probe', '7', '', '4', '40', '41', '41/workers,', '0{}').map((f): FrameCase => ({ frames: [f], breaking: true, what: `engine:${f.slice(0, 2)}` })),
  fc.uint8Array({ maxLength: 256 }).map((b): FrameCase => ({ frames: [b], breaking: true, what: 'binary-alone' })),
  fc.string({ maxLength: 256 }).map((s): FrameCase => ({ frames: [s], breaking: true, what: 'text' })),
);

/** Events on other namespaces (joined or not), and namespace handshakes with odd auth. */
const otherNamespaces = fc
  .record({ nsp: fc.constantFrom('/admin', '/board', '/', '/nope'), payload: fc.jsonValue({ maxDepth: 3 }), connect: fc.boolean() })
  .map(({ nsp, payload, connect }): FrameCase => {
    const prefix = nsp === '/' ? '' : `${nsp},`;
    const body = JSON.stringify(payload) ?? 'null';
    return { frames: [connect ? `40${prefix}${body.startsWith('{') ? body : '{}'}` : `42${prefix}["x",${body}]`], breaking: false, what: `ns:${nsp}:${connect ? 'connect' : 'event'}` };
  });

/** A frame past the largest message: the WebSocket closes with 1009. */
const oversized = fc.constant<FrameCase>({ frames: ['4' + '2["status",'.padEnd(MAX_FRAME + 1024, ' ') + ']'], breaking: true, what: 'oversized' });

/** Cases after which the connection stays open: most of the fuzz, so that many reach the handlers. */
export const safeFrameCase: fc.Arbitrary<FrameCase> = fc.oneof({ arbitrary: wrongEvent, weight: 10 }, { arbitrary: otherNamespaces, weight: 1 });

/** Cases that end the connection (the parser or the WebSocket refuses them): one ends each connection. */
export const breakingFrameCase: fc.Arbitrary<FrameCase> = fc.oneof({ arbitrary: brokenPacket, weight: 12 }, { arbitrary: engineJunk, weight: 6 }, { arbitrary: oversized, weight: 1 });

/** A worker hello (the handshake's auth), mostly wrong. */
export const helloCase: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constant(JSON.stringify({ protocol: PROTOCOL_VERSION, backend: 'cpu', nickname: 'fuzz' })), weight: 8 },
  {
    arbitrary: fc.record({ field: fc.constantFrom('protocol', 'backend', 'adapter', 'nickname', 'backendReason', '__proto__', 'extra'), value: wrongValue }).map(({ field, value }) =>
      field === '__proto__' ? withProtoKeys({ protocol: PROTOCOL_VERSION, backend: 'cpu' }, '__proto__', value) : JSON.stringify({ protocol: PROTOCOL_VERSION, backend: 'cpu', [field]: value }),
    ),
    weight: 2,
  },
);

/** One HTTP request of the fuzzer. */
export interface BodyCase {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string | Uint8Array | undefined;
  admin: boolean;
  what: string;
}

/** Routes as `METHOD path`, `:id` standing for any id (the run's own only where nothing changes). */
export const ROUTES = [
  'GET /healthz', 'GET /api/datasets', 'GET /api/join', 'GET /api/runs', 'GET /api/runs/:id', 'GET /api/runs/:id/leaderboard', 'GET /api/runs/:id/params',
  'GET /api/runs/:id/params/:version/:sha', 'GET /board', 'GET /board/:id', 'GET /metrics', 'GET /api/datasets/:file',
  'POST /api/admin/login', 'POST /api/admin/logout', 'GET /api/admin/session', 'POST /api/runs', 'POST /api/specs/preview', 'POST /api/datasets',
  'POST /api/runs/:other/pause', 'POST /api/runs/:other/resume', 'POST /api/runs/:other/start', 'POST /api/runs/:other/stop', 'DELETE /api/runs/:other',
  'GET /api/runs/:id/workers', 'GET /api/runs/:id/events', 'GET /api/runs/:id/checkpoint',
] as const;

const segment = fc.oneof(fc.constantFrom('RUN', 'x', '..', '%2e%2e', '%00', '__proto__', 'constructor', '0', '-1', '1e999', 'a'.repeat(2000)), fc.string({ maxLength: 30 }).map(encodeURIComponent));

const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? 'null'),
  nastyText,
  fc.constantFrom('{"token":"x"}', '{"token":{"__proto__":{"length":1e9}}}', '{"name":"x","dataset":"mnist","model":{"kind":"mlp","layers":[784,10]},"__proto__":{"admin":true}}', '{"dataset":"no-such-dataset","model":{"kind":"mlp","layers":[784,' + '1,'.repeat(5000) + '10]}}', '{"dataset":"no-such-dataset","model":{"layers":[1e9,1e9]}}'),
  // Truncated JSON and a body of nothing but whitespace.
  fc.jsonValue({ maxDepth: 3 }).map((v) => (JSON.stringify(v) ?? 'null').slice(0, -1)),
  fc.constant(' '.repeat(1000)),
);

/** Multipart bodies: well-formed with odd parts, and broken ones. */
const multipart = fc
  .record({ parts: fc.array(fc.record({ name: fc.oneof(fc.constantFrom('file', 'name', 'spec', '__proto__', 'constructor', ''), fc.string({ maxLength: 20 })), filename: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), data: fc.oneof(fc.string({ maxLength: 300 }), nastyText) }), { maxLength: 6 }), broken: fc.constantFrom('none', 'no-end', 'wrong-boundary', 'no-headers') })
  .map(({ parts, broken }) => {
    const b = 'fuzzboundary';
    const body = parts
      .map((p) => (broken === 'no-headers' ? `--${b}\r\n\r\n${p.data}\r\n` : `--${b}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n\r\n${p.data}\r\n`))
      .join('');
    return { body: body + (broken === 'no-end' ? '' : `--${broken === 'wrong-boundary' ? 'other' : b}--\r\n`), contentType: `multipart/form-data; boundary=${b}` };
  });

export const bodyCase: fc.Arbitrary<Omit<BodyCase, 'path'> & { route: string; segments: string[] }> = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    segments: fc.array(segment, { minLength: 3, maxLength: 3 }),
    admin: fc.boolean(),
    kind: fc.constantFrom('json', 'json', 'json', 'multipart', 'yaml', 'text', 'none', 'wrong-type', 'huge'),
    json: jsonBody,
    multipart,
    hugeMiB: fc.constantFrom(1.01, 2, 8),
  })
  .map(({ route, segments, admin, kind, json, multipart: mp, hugeMiB }) => {
    const method = route.split(' ')[0];
    const body =
      kind === 'multipart' ? mp.body : kind === 'none' ? undefined : kind === 'huge' ? `{"a":"${'x'.repeat(Math.round(hugeMiB * 2 ** 20))}"}` : json;
    const contentType =
      kind === 'multipart' ? mp.contentType : kind === 'yaml' ? 'application/yaml' : kind === 'text' ? 'text/plain' : kind === 'none' ? undefined : kind === 'wrong-type' ? 'application/x-unknown' : 'application/json';
    // The admin's POST /api/runs could create a run that takes the honest workers away: fuzz the
    // run-spec parser through the preview, which parses the same way and creates nothing.
    if (route === 'POST /api/runs') admin = false;
    return { method, route, segments, admin, contentType, body: method === 'GET' ? undefined : body, what: `${route} ${kind}` };
  });

/** The request path of a body case, with the run's own id where the route only reads. */
export function pathOf(c: { route: string; segments: string[] }, runId: string): string {
  let i = 0;
  const path = c.route.split(' ')[1];
  return path.replace(/:(\w+)/g, (_m, name: string) => {
    const s = c.segments[i++ % c.segments.length];
    if (name === 'id' && s === 'RUN') return runId;
    return s === 'RUN' ? 'not-the-run' : s;
  });
}
