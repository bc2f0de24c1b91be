import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Everything the admin UI needs from authentication, in one place. The auth module (branch `auth`)
 * will provide sessions, roles and CSRF; until it is merged this adapter implements a small working
 * stand-in so the UI can be built and tested. At merge time, re-point these functions at src/auth.
 */

export type Role = 'viewer' | 'operator' | 'admin';

export interface AdminUser {
  kind: 'anonymous-loopback' | 'open' | 'token' | 'user';
  role: Role;
  userId?: string | number | undefined;
  name: string;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAtLeast(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

const CSRF_COOKIE = 'corral_admin_csrf';

export interface AuthAdapter {
  currentUser(request: FastifyRequest): AdminUser | undefined;
  /** The token to embed in forms; sets the cookie it is checked against when there is none yet. */
  csrfToken(request: FastifyRequest, reply: FastifyReply): string;
  /** True when the request carries a valid token (form field `_csrf` or header `x-csrf-token`). */
  checkCsrf(request: FastifyRequest): boolean;
  /** Sends 403 (or a login redirect) and returns false when the caller lacks `role`. */
  requireRole(request: FastifyRequest, reply: FastifyReply, role: Role): boolean;
}

function isLoopback(ip: string): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1' || ip.startsWith('127.');
}

function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i !== -1 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

function appendSetCookie(reply: FastifyReply, value: string): void {
  const prev = reply.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  reply.header('set-cookie', [...list, value]);
}

/**
 * The stand-in: the principal comes from `request.principal` when an auth hook set one, else a
 * loopback caller is admin (Corral's default `loopback-open` mode) and anyone else is nobody.
 * CSRF is a signed double-submit cookie: the HMAC stops a cookie planted by a sibling origin from
 * being accepted, the cookie/field match stops a cross-site form from guessing it.
 */
/** What the auth plugin (branch `auth`) puts on a request, read structurally so main compiles without it. */
interface AuthFields {
  principal?: AdminUser | null;
  authSession?: { id: string; csrfToken: string } | null;
}
const authFields = (request: FastifyRequest): AuthFields => request as unknown as AuthFields;

function sentToken(request: FastifyRequest): string | undefined {
  const body = request.body as Record<string, unknown> | undefined;
  const field = body && typeof body === 'object' && typeof body._csrf === 'string' ? body._csrf : undefined;
  const header = request.headers['x-csrf-token'];
  return field ?? (typeof header === 'string' ? header : undefined);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createAuthAdapter(secret: Buffer = randomBytes(32)): AuthAdapter {
  const sign = (nonce: string): string => createHmac('sha256', secret).update(nonce).digest('base64url');
  const valid = (token: string | undefined): token is string => {
    if (!token) return false;
    const [nonce, mac] = token.split('.');
    if (!nonce || !mac) return false;
    const want = Buffer.from(sign(nonce));
    const got = Buffer.from(mac);
    return want.length === got.length && timingSafeEqual(want, got);
  };
  return {
    currentUser(request) {
      // Once the auth plugin is installed it decorates every request: its answer (even null) is final.
      if ('principal' in (request as object)) return authFields(request).principal ?? undefined;
      return isLoopback(request.ip) ? { kind: 'anonymous-loopback', role: 'admin', name: 'local' } : undefined;
    },
    csrfToken(request, reply) {
      const session = authFields(request).authSession;
      if (session?.csrfToken) return session.csrfToken;
      const existing = readCookie(request, CSRF_COOKIE);
      if (valid(existing)) return existing;
      const nonce = randomBytes(18).toString('base64url');
      const token = `${nonce}.${sign(nonce)}`;
      appendSetCookie(reply, `${CSRF_COOKIE}=${token}; Path=/admin; HttpOnly; SameSite=Strict`);
      // A request that renders twice in one response must see the same token.
      request.headers.cookie = `${request.headers.cookie ? `${request.headers.cookie}; ` : ''}${CSRF_COOKIE}=${token}`;
      return token;
    },
    checkCsrf(request) {
      const sent = sentToken(request);
      if (!sent) return false;
      // A logged-in session has its own token (HMAC of the session id); the cookie pair covers the rest.
      const session = authFields(request).authSession;
      if (session?.csrfToken) return same(session.csrfToken, sent);
      const cookie = readCookie(request, CSRF_COOKIE);
      return valid(cookie) && same(cookie, sent);
    },
    requireRole(request, reply, role) {
      const user = this.currentUser(request);
      if (!user) {
        void reply.redirect('/admin/login', 303);
        return false;
      }
      if (!roleAtLeast(user.role, role)) {
        void reply.code(403).type('text/plain; charset=utf-8').send(`forbidden: this needs the ${role} role`);
        return false;
      }
      return true;
    },
  };
}
