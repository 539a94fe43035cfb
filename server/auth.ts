// The admin credential and admin sessions: one token (CROWDTRAIN_ADMIN_TOKEN, or generated at first
// start and kept only as a salted scrypt hash in the store), sessions in the store behind a signed
// HttpOnly cookie, the Origin check on cookie-authenticated mutations, and the checks admin routes
// and the admin Socket.IO namespace use. Routes themselves live in routes/admin.ts.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, sendError } from './errors.ts';
import type { Store } from './store/store.ts';

/** Name of the session cookie. */
export const ADMIN_COOKIE = 'crowdtrain_admin';
/** Store setting that holds the token's hash (never the token). */
export const TOKEN_HASH_SETTING = 'admin.tokenHash';
/** Store setting that holds the secret session cookies are signed with. */
export const COOKIE_SECRET_SETTING = 'cookie.secret';

const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** scrypt cost: about 50 ms per check on a laptop core; N = 2^14 is what node:crypto defaults to. */
const SCRYPT = { N: 1 << 14, r: 8, p: 1, keylen: 32, saltBytes: 16 };
/** Failed token checks allowed per client address per minute (login and Bearer together). */
const FAILURES_PER_MINUTE = 10;

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by adminPlugin; requireAdmin refuses everything while it is missing. */
    adminAuth?: AdminAuth;
  }
}

function scryptAsync(secret: string, salt: Buffer, keylen: number, o: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, keylen, { ...o, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$<salt b64url>$<hash b64url>`: self-describing, so the cost can rise later. */
export async function hashToken(token: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const key = await scryptAsync(token, salt, SCRYPT.keylen, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `token` matches a hash made by hashToken; constant-time in the token's content. */
export async function verifyTokenHash(token: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length === 0) return false;
  const key = await scryptAsync(token, salt, expected.length, { N, r, p });
  return timingSafeEqual(key, expected);
}

/** A new admin token: 256 random bits, URL-safe (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Counts failed attempts per client address over a sliding minute. In memory: one process. */
export class FailureLimiter {
  private failures = new Map<string, number[]>();

  constructor(
    private readonly limit = FAILURES_PER_MINUTE,
    private readonly windowMs = 60_000,
  ) {}

  /** Milliseconds until `key` may try again; 0 when it may now. */
  retryAfterMs(key: string, now = Date.now()): number {
    const recent = this.recent(key, now);
    return recent.length < this.limit ? 0 : recent[0] + this.windowMs - now;
  }

  fail(key: string, now = Date.now()): void {
    const recent = this.recent(key, now);
    recent.push(now);
    this.failures.set(key, recent);
    // Forget idle addresses so the map cannot grow without bound.
    if (this.failures.size > 10_000) for (const k of this.failures.keys()) if (this.recent(k, now).length === 0) this.failures.delete(k);
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    return list;
  }
}

export interface AdminAuthOptions {
  store: Pick<Store, 'getSetting' | 'setSetting' | 'saveSession' | 'getSession' | 'deleteSession' | 'sweepSessions'>;
  /** CROWDTRAIN_ADMIN_TOKEN: when set, its hash replaces the stored one. */
  adminToken?: string;
  /** Told the generated token, once, at the start that created it (the CLI prints it). */
  onTokenCreated?: (token: string) => void;
  sessionTtlMs?: number;
  /** The time sessions expire by (the coordinator's clock); default Date.now. */
  now?: () => number;
}

/** What a Socket.IO handshake offers: its request headers and its `auth` payload. */
export interface HandshakeLike {
  headers: Record<string, string | string[] | undefined>;
  auth?: Record<string, unknown> | null;
}

/**
 * The secret session cookies are signed with: 256 random bits made at first start and kept in the
 * store, so cookies stay valid across restarts and a copied cookie value cannot be altered.
 */
export function cookieSecret(store: Pick<Store, 'getSetting' | 'setSetting'>): string {
  let secret = store.getSetting(COOKIE_SECRET_SETTING);
  if (!secret) {
    secret = randomBytes(32).toString('base64url');
    store.setSetting(COOKIE_SECRET_SETTING, secret);
  }
  return secret;
}

const sessionHash = (id: string) => createHash('sha256').update(id).digest('hex');

/**
 * The admin credential and sessions of one coordinator. Sessions live in the store (only the
 * SHA-256 of each id), so they survive a restart; the cookie carrying the id is signed.
 * @example const auth = await AdminAuth.create({ store, onTokenCreated: (t) => console.log(t) });
 *          if (await auth.checkToken(bearer)) ...
 */
export class AdminAuth {
  readonly failures = new FailureLimiter();
  /** SHA-256 of the last token that passed scrypt, so scripts polling with Bearer skip scrypt. */
  private verified: Buffer | null = null;
  private readonly signer: ReturnType<typeof fastifyCookie.signerFactory>;
  private readonly store: AdminAuthOptions['store'];
  private readonly now: () => number;

  private constructor(
    private tokenHash: string,
    private readonly ttlMs: number,
    opts: AdminAuthOptions,
  ) {
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.signer = fastifyCookie.signerFactory(cookieSecret(opts.store));
    this.store.sweepSessions(this.now());
  }

  static async create(opts: AdminAuthOptions): Promise<AdminAuth> {
    const ttl = opts.sessionTtlMs ?? SESSION_TTL_MS;
    const fromEnv = opts.adminToken?.trim();
    if (fromEnv) {
      const hash = await hashToken(fromEnv);
      opts.store.setSetting(TOKEN_HASH_SETTING, hash);
      return new AdminAuth(hash, ttl, opts);
    }
    const stored = opts.store.getSetting(TOKEN_HASH_SETTING);
    if (stored) return new AdminAuth(stored, ttl, opts);
    const token = generateToken();
    const hash = await hashToken(token);
    opts.store.setSetting(TOKEN_HASH_SETTING, hash);
    opts.onTokenCreated?.(token);
    return new AdminAuth(hash, ttl, opts);
  }

  /** Whether `token` is the admin token. */
  async checkToken(token: unknown): Promise<boolean> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return false;
    const digest = createHash('sha256').update(token).digest();
    if (this.verified && timingSafeEqual(digest, this.verified)) return true;
    const ok = await verifyTokenHash(token, this.tokenHash);
    if (ok) this.verified = digest;
    return ok;
  }

  /** A new session: its id (for the cookie only; the store keeps its hash). Sweeps expired ones. */
  createSession(): string {
    const now = this.now();
    this.store.sweepSessions(now);
    const id = randomBytes(32).toString('base64url');
    this.store.saveSession({ idHash: sessionHash(id), createdAt: now, expiresAt: now + this.ttlMs });
    return id;
  }

  hasSession(id: string | undefined): boolean {
    if (!id) return false;
    const hash = sessionHash(id);
    const s = this.store.getSession(hash);
    if (!s) return false;
    if (s.expiresAt <= this.now()) {
      this.store.deleteSession(hash);
      return false;
    }
    return true;
  }

  endSession(id: string | undefined): void {
    if (id) this.store.deleteSession(sessionHash(id));
  }

  get sessionTtlMs(): number {
    return this.ttlMs;
  }

  /** The session id in a Cookie header, if it holds a cookie signed by this coordinator. */
  sessionFromCookieHeader(header: string | string[] | undefined): string | undefined {
    const raw = Array.isArray(header) ? header.join('; ') : header;
    if (!raw) return undefined;
    const value = fastifyCookie.parse(raw)[ADMIN_COOKIE];
    if (!value) return undefined;
    const unsigned = this.signer.unsign(value);
    return unsigned.valid ? unsigned.value : undefined;
  }

  /** Whether a request carries a live session cookie. */
  hasSessionCookie(req: FastifyRequest): boolean {
    return this.hasSession(this.sessionFromCookieHeader(req.headers.cookie));
  }

  /**
   * Whether a Socket.IO handshake carries a live session cookie (from a page of this coordinator's
   * own origin, when the browser names one) or `auth.token`.
   */
  async checkHandshake(h: HandshakeLike): Promise<boolean> {
    if (this.hasSession(this.sessionFromCookieHeader(h.headers.cookie))) {
      const { origin, host } = h.headers;
      if (typeof origin !== 'string' || typeof host !== 'string' || originMatchesHost(origin, host)) return true;
    }
    const token = h.auth?.token;
    return typeof token === 'string' && (await this.checkToken(token));
  }

  setSessionCookie(req: FastifyRequest, reply: FastifyReply, id: string): void {
    reply.header('set-cookie', fastifyCookie.serialize(ADMIN_COOKIE, this.signer.sign(id), this.cookieOptions(req, Math.floor(this.ttlMs / 1000))));
  }

  clearSessionCookie(req: FastifyRequest, reply: FastifyReply): void {
    reply.header('set-cookie', fastifyCookie.serialize(ADMIN_COOKIE, '', { ...this.cookieOptions(req, 0), expires: new Date(0) }));
  }

  private cookieOptions(req: FastifyRequest, maxAge: number) {
    return { path: '/', httpOnly: true, sameSite: 'strict' as const, maxAge, secure: req.protocol === 'https' };
  }
}

/** Whether an Origin (or a Referer's origin) names the host a request was sent to. */
export function originMatchesHost(originOrUrl: string, host: string): boolean {
  try {
    const origin = new URL(originOrUrl);
    return origin.host === new URL(`${origin.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Why a cookie-authenticated request must be refused as cross-origin, or undefined when it may
 * go on: a mutation (POST, PUT, PATCH, DELETE) must come from a page of this coordinator, as its
 * Origin header (or, without one, its Referer) says. Browsers send Origin on every such request;
 * scripts authenticate with the Bearer token and are not asked.
 */
export function crossOriginRefusal(req: FastifyRequest): string | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  const { origin, referer } = req.headers;
  const claimed = typeof origin === 'string' && origin !== 'null' ? origin : typeof referer === 'string' ? referer : undefined;
  const scripts = 'scripts send Authorization: Bearer <admin token> instead';
  if (claimed === undefined) return `a ${req.method} with the admin session cookie must come from this coordinator's admin page, and this one names no Origin or Referer; ${scripts}`;
  if (!originMatchesHost(claimed, req.host)) return `a ${req.method} with the admin session cookie must come from this coordinator's own pages, not from ${JSON.stringify(typeof origin === 'string' ? origin : claimed)}; ${scripts}`;
  return undefined;
}

/** The answer to an address that sent too many wrong tokens; `waitMs` until it may try again. */
export function tooManyWrongTokens(waitMs: number): HttpError {
  return new HttpError('too_many_attempts', `too many wrong admin tokens from this address; try again in ${Math.ceil(waitMs / 1000)} s`);
}

export const ADMIN_LOGIN_REQUIRED = 'admin login required: log in at /admin, or send Authorization: Bearer <admin token>';

/**
 * Fastify preHandler for admin routes: a live session cookie or `Authorization: Bearer <token>`,
 * else 401 (429 after too many wrong tokens from one address).
 * @example app.post('/api/datasets', { preHandler: requireAdmin }, handler)
 */
export async function requireAdmin(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const auth = req.server.adminAuth;
  if (!auth) {
    // Fail closed: a route guarded before the admin plugin was set up refuses everyone.
    await sendError(reply, new HttpError('admin_unavailable', 'admin authentication is not set up on this coordinator'));
    return;
  }
  if (auth.hasSessionCookie(req)) {
    const refusal = crossOriginRefusal(req);
    if (refusal) {
      req.log.warn({ ip: req.ip, origin: req.headers.origin, url: req.url }, 'cross-origin admin request refused');
      await sendError(reply, new HttpError('cross_origin', refusal));
    }
    return;
  }
  const bearer = bearerToken(req.headers.authorization);
  if (bearer === undefined) {
    await sendError(reply, new HttpError('unauthorized', ADMIN_LOGIN_REQUIRED));
    return;
  }
  const wait = auth.failures.retryAfterMs(req.ip);
  if (wait > 0) {
    await sendError(reply.header('retry-after', Math.ceil(wait / 1000)), tooManyWrongTokens(wait));
    return;
  }
  if (await auth.checkToken(bearer)) return;
  auth.failures.fail(req.ip);
  await sendError(reply, new HttpError('unauthorized', 'admin login required: the Bearer token is not the admin token'));
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it holds. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return m?.[1];
}
