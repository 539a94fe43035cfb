// Parameter snapshots over HTTP: GET /api/runs/:runId/params/:version/:sha256, the float32 values
// of a run's shared view at that version. The URL names its content, so any HTTP cache may keep
// it for good. Which snapshots exist is the ParamChannel's business (server/params/param-channel.ts).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ParamChannel } from '../params/param-channel.ts';

export interface ParamRouteOptions {
  /** Called with the bytes of each snapshot sent (not for a 304), to count a run's HTTP traffic. */
  onServed?: (runId: string, bytes: number) => void;
}

const VERSION = /^(0|[1-9][0-9]{0,14})$/;
const SHA256 = /^[0-9a-f]{64}$/;

export function registerParamRoutes(app: FastifyInstance, channelOf: (runId: string) => ParamChannel | undefined, opts: ParamRouteOptions = {}): void {
  app.get<{ Params: { runId: string; version: string; sha256: string } }>('/api/runs/:runId/params/:version/:sha256', async (req, reply) => {
    const { runId, version: versionText, sha256 } = req.params;
    if (!VERSION.test(versionText)) return refuse(reply, 400, 'bad_version', `the version in a snapshot URL is a non-negative integer, got "${versionText}"`);
    if (!SHA256.test(sha256)) return refuse(reply, 400, 'bad_hash', `the hash in a snapshot URL is a SHA-256 as 64 lower-case hex digits, got "${sha256}"`);
    const channel = channelOf(runId);
    if (!channel) return refuse(reply, 404, 'unknown_run', `no run with id "${runId}"`);
    const version = Number(versionText);
    const found = channel.lookup(version, sha256);
    if (!(found instanceof Uint8Array)) return refuse(reply, 404, found.code, found.error);

    const etag = `"${sha256}"`;
    reply.header('cache-control', 'public, max-age=31536000, immutable').header('etag', etag);
    if (matches(req.headers['if-none-match'], sha256)) return reply.code(304).send();
    if (req.method === 'GET') opts.onServed?.(runId, found.byteLength);
    return reply
      .type('application/octet-stream')
      .header('content-length', found.byteLength)
      .send(Buffer.from(found.buffer, found.byteOffset, found.byteLength));
  });
}

function refuse(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  // An error may stop being one (a snapshot made later), so no cache keeps it.
  return reply.code(status).header('cache-control', 'no-store').send({ error, message });
}

/** If-None-Match: "*", or a list of entity tags, weak (W/"...") or strong. */
function matches(header: string | undefined, sha256: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === `"${sha256}"`;
  });
}
