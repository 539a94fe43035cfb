// What every HTTP answer of the coordinator carries and every request meets before its route:
// security headers (helmet: the Content-Security-Policy the pages are written for, frame and
// sniffing protection), signed cookies, per-route rate limits, body and time limits, and the
// error handler that answers Fastify's own errors in our shape. Routes pick their limits from here.
import fastifyCookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { cookieSecret } from './auth.ts';
import { defaultErrorHandler, HttpError, sendError } from './errors.ts';
import type { Store } from './store/store.ts';

/**
 * Request bodies, in bytes. The server-wide limit is the small one; routes that take more say so.
 * Dataset uploads are multipart and bounded by UPLOAD_LIMITS (server/data/upload.ts) instead.
 */
export const BODY_LIMITS = {
  /** Every route unless it says otherwise: logins, verbs, small JSON. */
  json: 64 << 10,
  /** A run spec (JSON or YAML): a long layer list fits many times over. */
  spec: 1 << 20,
} as const;

/** Time limits of the HTTP server, in milliseconds. */
export const TIME_LIMITS = {
  /** The whole request, headers and body, must arrive within this (a dataset upload of 64 MiB at 4 Mbit/s). */
  requestTimeout: 150_000,
  /** A socket that sends nothing for this long is closed (WebSockets excepted: they ping every 25 s). */
  connectionTimeout: 120_000,
  /** An idle keep-alive connection stays open this long (longer than a reverse proxy's idle timeout). */
  keepAliveTimeout: 72_000,
} as const;

/** Per-address request limits of the routes an attacker would hammer. */
export const RATE_LIMITS = {
  /** Login attempts (right or wrong) per address per minute; the 11th gets 429. */
  login: { max: 10, timeWindow: 60_000 },
  /** Dataset uploads per address per minute: each is parsed and converted on the event loop. */
  upload: { max: 6, timeWindow: 60_000 },
} as const;

/**
 * The Content-Security-Policy of the pages. Built pages load only scripts, styles and fonts of
 * their own origin; images may be data: URLs (the board's QR code); connections go to the page's
 * own origin (fetch, and Socket.IO's ws:/wss: of the same host, which CSP 3's 'self' covers). No
 * page compiles WebAssembly, so 'wasm-unsafe-eval' is not allowed. `dev` adds what Vite's dev
 * server needs (its injected styles and client script, its HMR socket) and is never served by the
 * coordinator.
 */
export function contentSecurityPolicy(dev = false): Record<string, string[]> {
  return {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'", ...(dev ? ["'unsafe-inline'", "'unsafe-eval'"] : [])],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", ...(dev ? ["'unsafe-inline'"] : [])],
    imgSrc: ["'self'", 'data:', 'blob:'],
    fontSrc: ["'self'", 'data:'],
    connectSrc: ["'self'", ...(dev ? ['ws:', 'wss:'] : [])],
    workerSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  };
}

/** The policy as a header value (kebab-case directives), for servers that are not Fastify. */
export function contentSecurityPolicyHeader(dev = false): string {
  return Object.entries(contentSecurityPolicy(dev))
    .map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${v.join(' ')}`)
    .join('; ');
}

const retryIn = (ttlMs: number) => Math.max(1, Math.ceil(ttlMs / 1000));

/** Route config for @fastify/rate-limit: login attempts per address. */
export const loginRateLimit = {
  ...RATE_LIMITS.login,
  errorResponseBuilder: (_req: FastifyRequest, c: { ttl: number }) =>
    new HttpError('too_many_attempts', `too many admin login attempts from this address (${RATE_LIMITS.login.max} a minute); try again in ${retryIn(c.ttl)} s`),
};

/** Route config for @fastify/rate-limit: dataset uploads per address. */
export const uploadRateLimit = {
  ...RATE_LIMITS.upload,
  errorResponseBuilder: (_req: FastifyRequest, c: { ttl: number }) =>
    new HttpError('too_many_requests', `too many dataset uploads from this address (${RATE_LIMITS.upload.max} a minute); try again in ${retryIn(c.ttl)} s`),
};

/**
 * Registers helmet, @fastify/cookie (signed with the store's secret), @fastify/rate-limit (off
 * unless a route asks), the default error and not-found handlers. Call before any route is registered.
 * @example await webSecurity(app, store);
 */
export async function webSecurity(app: FastifyInstance, store: Pick<Store, 'getSetting' | 'setSetting'>): Promise<void> {
  app.setErrorHandler(defaultErrorHandler);
  app.setNotFoundHandler((req, reply) => sendError(reply, new HttpError('not_found', `nothing at ${req.method} ${req.url.split('?')[0]}`)));
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: contentSecurityPolicy(false) },
    // X-Frame-Options for browsers without frame-ancestors.
    xFrameOptions: { action: 'deny' },
    // The Origin check on cookie-authenticated mutations needs the browser to name same-origin
    // senders ('no-referrer' makes Chromium send Origin: null); other sites get no referrer.
    referrerPolicy: { policy: 'same-origin' },
    // Off: a classroom coordinator moves between http and https (a self-signed certificate today,
    // plain http tomorrow), and HSTS would lock every laptop out of the plain one for a year.
    strictTransportSecurity: false,
  });
  await app.register(fastifyCookie, { secret: cookieSecret(store) });
  await app.register(rateLimit, { global: false });
}
