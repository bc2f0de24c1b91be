import { fastifyCookie } from '@fastify/cookie';
import type { FastifyRequest } from 'fastify';
import { SESSION_COOKIE } from './sessions.js';

// The parse/serialize helpers of @fastify/cookie, not the plugin: the app may or may not register
// the plugin itself, and registering it twice fails.
export function readSessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  return fastifyCookie.parse(header)[SESSION_COOKIE] || undefined;
}

export function sessionCookie(token: string, expiresAt: number, secure: boolean): string {
  return fastifyCookie.serialize(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: '/',
    expires: new Date(expiresAt),
  });
}

export function clearedSessionCookie(secure: boolean): string {
  return fastifyCookie.serialize(SESSION_COOKIE, '', {
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: '/',
    expires: new Date(0),
  });
}
