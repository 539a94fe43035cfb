// The REST error codes, each with its HTTP status, in one place; every route answers an error as
// `{ error: code, message, ...extra }`. Fastify's own errors (a body too large, unparsable JSON, an
// unsupported content type) are mapped here too, so no route answers them in Fastify's own shape.
// The dataset parser's own codes (a bad file, too large, ...) live with it in server/data/upload.ts.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** Every code a route may answer, with its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_spec: 400,
  missing_name: 400,
  missing_file: 400,
  bad_upload: 400,
  bad_token: 401,
  unauthorized: 401,
  cross_origin: 403,
  not_found: 404,
  unknown_run: 404,
  no_checkpoint: 404,
  not_built: 404,
  request_timeout: 408,
  bad_transition: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  too_many_attempts: 429,
  internal: 500,
  admin_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * An error a route throws (or sends) to answer with its code's status.
 * @example throw new HttpError('unknown_run', `no run with id "${id}"`);
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.statusCode = ERROR_STATUS[code];
  }

  body(): { error: ErrorCode; message: string } & Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

/**
 * Fastify's own client errors as HttpErrors that say what was wrong; undefined for anything else.
 * `contentTypes` names what the route accepts, for the 415 message.
 */
export function fastifyClientError(err: unknown, req?: FastifyRequest, contentTypes = 'application/json'): HttpError | undefined {
  if (err instanceof HttpError) return err;
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode !== 'number' || fe.statusCode < 400 || fe.statusCode >= 500) return undefined;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.statusCode === 413) {
    const limit = req?.routeOptions.bodyLimit;
    return new HttpError('body_too_large', `the request body is larger than the ${limit ? formatBytes(limit) : 'size'} this route accepts`);
  }
  if (fe.statusCode === 415) return new HttpError('unsupported_media_type', `unsupported content type ${JSON.stringify(req?.headers['content-type'] ?? '')}: send ${contentTypes}`);
  if (fe.statusCode === 408) return new HttpError('request_timeout', 'the request took too long to arrive');
  if (fe.statusCode === 429) return new HttpError('too_many_requests', fe.message ?? 'too many requests');
  return new HttpError('bad_request', fe.message ?? 'bad request');
}

/** Sends an HttpError as `{ error, message, ...extra }` with its status. */
export function sendError(reply: FastifyReply, e: HttpError): FastifyReply {
  return reply.code(e.statusCode).send(e.body());
}

/**
 * The coordinator's default error handler: client errors answered in our shape, anything else a
 * 500 that names the failure and is logged.
 */
export function defaultErrorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = fastifyClientError(err, req);
  if (e) return sendError(reply, e);
  req.log.error({ err }, 'request failed');
  return sendError(reply, new HttpError('internal', `the coordinator failed: ${err instanceof Error ? err.message : String(err)}`));
}
