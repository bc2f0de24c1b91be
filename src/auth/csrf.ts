import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Forbidden } from '../errors.js';

/**
 * The CSRF token is an HMAC of the session id, so it needs no storage, differs per session and
 * dies with it. Forms put it in a `_csrf` field; HTMX and fetch send it as `x-csrf-token`.
 */
export function csrfTokenFor(key: string, sessionId: string): string {
  return createHmac('sha256', key).update(`csrf:${sessionId}`).digest('base64url');
}

export function csrfMatches(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Throws Forbidden unless the request carries the CSRF token of its own session. */
export function verifyCsrf(request: FastifyRequest): void {
  const expected = request.authSession?.csrfToken;
  if (!expected) throw new Forbidden('a logged-in session is required');
  const header = request.headers['x-csrf-token'];
  const body = request.body as Record<string, unknown> | undefined;
  const given = typeof header === 'string' ? header : body && typeof body === 'object' ? body._csrf : undefined;
  if (!csrfMatches(expected, given)) throw new Forbidden('invalid or missing CSRF token');
}
