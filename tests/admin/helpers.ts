import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { createAccounts } from '../../src/auth/accounts.js';
import { createPasswords } from '../../src/auth/passwords.js';
import type { Role } from '../../src/auth/principal.js';
import type { TestGateway } from '../helpers/gateway.js';

export interface Session {
  cookie: string;
  csrf: string;
}

/** Loads a page and returns the CSRF cookie and token it hands out, as a browser would keep them. */
export async function session(app: FastifyInstance, headers: Record<string, string> = {}): Promise<Session> {
  const res = await app.inject({ method: 'GET', url: '/admin/login', headers });
  const setCookie = res.headers['set-cookie'];
  const first = (Array.isArray(setCookie) ? setCookie[0] : setCookie) ?? '';
  const cookie = first.split(';')[0] ?? '';
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(res.body)?.[1] ?? '';
  return { cookie, csrf };
}

/** The test password of every user made by ensureUser (bcrypt cost 4: any cost verifies). */
export const PASSWORD = 'correct horse battery';

/** Creates `username` with `role` in the real gateway's store, unless it already exists. */
export async function ensureUser(t: TestGateway, username: string, role: Role, password = PASSWORD): Promise<void> {
  if (await t.gw.store.users.findByUsername(username)) return;
  await createAccounts({ store: t.gw.store, passwords: createPasswords(4) }).addUser(username, password, role);
}

/** Logs in through POST /admin/login and returns the session cookie and its CSRF token. */
export async function login(app: FastifyInstance, username: string, password = PASSWORD): Promise<Session> {
  const res = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ username, password }),
  });
  expect(res.statusCode, `login as ${username}`).toBe(303);
  expect(res.headers.location).toBe('/admin');
  const cookie = String([res.headers['set-cookie']].flat()[0] ?? '').split(';')[0] ?? '';
  expect(cookie).toMatch(/^[^=]+=.+/);
  const who = await app.inject({ method: 'GET', url: '/admin/session', headers: { cookie } });
  expect(who.statusCode).toBe(200);
  const csrf = (who.json() as { csrfToken?: string }).csrfToken ?? '';
  expect(csrf).not.toBe('');
  return { cookie, csrf };
}

/** A fresh logged-in session of a user with `role` (created on first use; named after the role by default). */
export async function loginAs(t: TestGateway, role: Role, username: string = role): Promise<Session> {
  await ensureUser(t, username, role);
  return login(t.gw.app, username);
}

export function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
