import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAccounts, unlockedAt } from '../../src/auth/accounts.js';
import { createLoginThrottle } from '../../src/auth/throttle.js';
import { buildTestApp, clock, login, passwords, tempStore, type TestClock } from './helpers.js';

const HOUR = 3600_000;

describe('web sessions', () => {
  let env: ReturnType<typeof tempStore>;
  let app: FastifyInstance;
  let t: TestClock;
  let accounts: ReturnType<typeof createAccounts>;

  beforeEach(async () => {
    env = tempStore();
    t = clock();
    accounts = createAccounts({ store: env.store, passwords, now: t.now });
    await accounts.addUser('alice', 'alice-password', 'admin');
    await accounts.addUser('olly', 'olly-password', 'operator');
    app = await buildTestApp(env.store, {
      now: t.now,
      config: { mode: 'required', trusted_proxies: ['10.0.0.1'] },
      throttle: createLoginThrottle({
        now: t.now,
        freePerUser: 3,
        freePerAddress: 8,
        unlockedAt: (u) => unlockedAt(env.store, u),
      }),
    });
  });
  afterEach(async () => {
    await app.close();
    await env.cleanup();
  });

  const get = (url: string, cookie: string, headers: Record<string, string> = {}) =>
    app.inject({ url, headers: { cookie, ...headers } });
  const post = (
    url: string,
    cookie: string,
    payload: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) => app.inject({ method: 'POST', url, headers: { cookie, ...headers }, payload });

  it('logs in with a form and sets a hardened cookie', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/admin/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=alice&password=alice-password',
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin');
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^corral_session=ey/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).not.toContain('Secure');
    const page = await get('/admin', cookie.split(';')[0]!);
    expect(page.json()).toEqual({ admin: 'alice' });
  });

  it('marks the cookie Secure behind a trusted TLS proxy', async () => {
    const { setCookie } = await login(app, 'alice', 'alice-password', { 'x-forwarded-proto': 'https' });
    expect(setCookie).not.toContain('Secure');
    const res = await app.inject({
      method: 'POST',
      url: '/admin/login',
      remoteAddress: '10.0.0.1',
      headers: { accept: 'application/json', 'x-forwarded-proto': 'https' },
      payload: { username: 'alice', password: 'alice-password' },
    });
    expect(String(res.headers['set-cookie'])).toContain('Secure');
  });

  it('rejects wrong passwords and unknown users alike', async () => {
    const form = (username: string, password: string) =>
      app.inject({ method: 'POST', url: '/admin/login', payload: { username, password } });
    const wrong = await form('alice', 'nope-nope-nope');
    expect(wrong.statusCode).toBe(303);
    expect(wrong.headers.location).toBe('/admin/login?error=invalid');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const json = await app.inject({
      method: 'POST',
      url: '/admin/login',
      headers: { accept: 'application/json' },
      payload: { username: 'ghost', password: 'x' },
    });
    expect(json.statusCode).toBe(401);
    expect((await env.store.auditLog.recent({ action: 'auth.login' })).map((r) => r.outcome)).toEqual([
      'failure',
      'failure',
    ]);
  });

  const attempt = (username: string, password: string, ip: string) =>
    app.inject({
      method: 'POST',
      url: '/admin/login',
      remoteAddress: ip,
      headers: { accept: 'application/json' },
      payload: { username, password },
    });

  it('throttles per user and address with growing delays, never locking the user out elsewhere', async () => {
    const A = '198.51.100.1';
    for (let i = 0; i < 3; i++) expect((await attempt('alice', 'wrong-password', A)).statusCode).toBe(401);
    // From the guessing address even the right password waits, ...
    const waiting = await attempt('alice', 'alice-password', A);
    expect(waiting.statusCode).toBe(429);
    expect(Number(waiting.headers['retry-after'])).toBe(1);
    // ... while alice herself, elsewhere, is not locked out.
    expect((await attempt('alice', 'alice-password', '198.51.100.2')).statusCode).toBe(200);
    // Each further failure from A doubles the wait.
    for (const delay of [1, 2, 4, 8]) {
      t.advance(delay * 1000);
      expect((await attempt('alice', 'wrong-password', A)).statusCode).toBe(401);
      expect(Number((await attempt('alice', 'wrong-password', A)).headers['retry-after'])).toBe(delay * 2);
    }
    // One address spraying usernames runs out of its own budget.
    const C = '192.0.2.1';
    for (let i = 0; i < 8; i++) expect((await attempt(`user${i}`, 'wrong-password', C)).statusCode).toBe(401);
    expect((await attempt('olly', 'olly-password', C)).statusCode).toBe(429);
    expect((await attempt('olly', 'olly-password', '192.0.2.2')).statusCode).toBe(200);
    // `corral user unlock` (accounts.unlock) lifts alice's waits at once.
    await accounts.unlock('alice', 'test');
    expect((await attempt('alice', 'alice-password', A)).statusCode).toBe(200);
    const rows = await env.store.auditLog.recent({ action: 'auth.login', limit: 100 });
    expect(rows.some((r) => r.detail === 'throttled')).toBe(true);
  });

  it('counts concurrent guesses before checking them: only the free ones reach bcrypt', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, () => attempt('alice', 'wrong-password', '198.51.100.7')),
    );
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(37);
    const outcomes = (await env.store.auditLog.recent({ action: 'auth.login', limit: 100 })).map((r) => r.outcome);
    expect(outcomes.filter((o) => o === 'failure')).toHaveLength(3);
  });

  it('keeps a username that is no user out of the audit log (it may be a password), as a short hash', async () => {
    await attempt('Tr0ub4dor&3', 'whatever-password', '198.51.100.9');
    await attempt('alice', 'wrong-password', '198.51.100.9');
    const rows = await env.store.auditLog.recent({ action: 'auth.login' });
    expect(rows.map((r) => r.actor)).toEqual(['alice', expect.stringMatching(/^unknown:[0-9a-f]{12}$/)]);
    expect(JSON.stringify(await env.store.auditLog.recent({ limit: 1000 }))).not.toContain('Tr0ub4dor');
  });

  it('requires the CSRF token on state-changing requests', async () => {
    const { cookie, csrfToken } = await login(app, 'alice', 'alice-password');
    expect((await post('/admin/users', cookie)).statusCode).toBe(403);
    expect((await post('/admin/users', cookie, { _csrf: 'x'.repeat(csrfToken.length) })).statusCode).toBe(403);
    expect((await post('/admin/users', cookie, { _csrf: csrfToken })).statusCode).toBe(200);
    expect((await post('/admin/users', cookie, {}, { 'x-csrf-token': csrfToken })).statusCode).toBe(200);
    // Another session's token does not fit.
    const other = await login(app, 'olly', 'olly-password');
    expect((await post('/admin/models/unload', other.cookie, { _csrf: csrfToken })).statusCode).toBe(403);
    expect((await post('/admin/models/unload', other.cookie, { _csrf: other.csrfToken })).statusCode).toBe(200);
    // Session cookies also authenticate /api, with the same CSRF rule.
    expect((await post('/api/pull', cookie)).statusCode).toBe(403);
    expect((await post('/api/pull', cookie, {}, { 'x-csrf-token': csrfToken })).statusCode).toBe(200);
    expect((await get('/admin/session', cookie)).json()).toEqual({ user: 'alice', role: 'admin', csrfToken });
  });

  it('enforces roles for logged-in users', async () => {
    const { cookie, csrfToken } = await login(app, 'olly', 'olly-password');
    expect((await post('/admin/users', cookie, { _csrf: csrfToken })).statusCode).toBe(403);
  });

  it('logs out: the session is revoked server-side', async () => {
    const { cookie, csrfToken } = await login(app, 'alice', 'alice-password');
    expect((await post('/admin/logout', cookie)).statusCode).toBe(403); // no CSRF token
    const out = await post('/admin/logout', cookie, { _csrf: csrfToken });
    expect(out.statusCode).toBe(303);
    expect(String(out.headers['set-cookie'])).toContain('Expires=Thu, 01 Jan 1970');
    // The old cookie, replayed, no longer works.
    const replay = await get('/admin', cookie, { accept: 'text/html' });
    expect(replay.statusCode).toBe(302);
    expect(String(replay.headers['set-cookie'])).toContain('corral_session=;');
    expect((await get('/api/tags', cookie)).statusCode).toBe(401);
    // A stale cookie does not lock the browser out of the login page.
    expect((await get('/admin/login', cookie)).statusCode).toBe(200);
  });

  it('ends sessions on password change and admin revocation', async () => {
    const a = await login(app, 'alice', 'alice-password');
    const b = await login(app, 'olly', 'olly-password');
    await accounts.setPassword('alice', 'new-password!');
    expect((await get('/admin', a.cookie)).statusCode).toBe(401);
    expect((await get('/admin', b.cookie)).statusCode).toBe(200);
    await app.corralAuth.sessions.revokeAllForUser((await env.store.users.findByUsername('olly'))!.id);
    expect((await get('/admin', b.cookie)).statusCode).toBe(401);
    await login(app, 'alice', 'new-password!');
  });

  it('disabling a user ends their sessions and refuses their login until re-enabled', async () => {
    const b = await login(app, 'olly', 'olly-password');
    expect((await get('/admin', b.cookie)).statusCode).toBe(200);
    await accounts.setDisabled('olly', true, 'alice');
    expect((await get('/admin', b.cookie)).statusCode).toBe(401);
    await expect(login(app, 'olly', 'olly-password')).rejects.toThrow(/login failed: 401/);
    // The last active admin cannot be disabled (nobody could administer Corral any more).
    await expect(accounts.setDisabled('alice', true)).rejects.toThrow(/last admin/);
    expect((await env.store.auditLog.recent({ action: 'user.disable' }))[0]).toMatchObject({
      actor: 'alice',
      target: 'olly',
    });
    await accounts.setDisabled('olly', false);
    await login(app, 'olly', 'olly-password');
  });

  it('expires idle sessions, and absolute ones even when active', async () => {
    const idle = await login(app, 'alice', 'alice-password');
    t.advance(HOUR - 1000);
    expect((await get('/admin', idle.cookie)).statusCode).toBe(200); // refreshes last-seen
    await new Promise((r) => setImmediate(r));
    t.advance(HOUR - 1000);
    expect((await get('/admin', idle.cookie)).statusCode).toBe(200);
    t.advance(HOUR);
    const expired = await get('/admin', idle.cookie);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error).toContain('expired');

    const busy = await login(app, 'alice', 'alice-password');
    for (let elapsed = 0; elapsed < 24 * HOUR - 1000; elapsed += HOUR / 2) {
      expect((await get('/admin', busy.cookie)).statusCode).toBe(200);
      await new Promise((r) => setImmediate(r));
      t.advance(HOUR / 2);
    }
    expect((await get('/admin', busy.cookie)).statusCode).toBe(401);
  });

  it('rejects forged and tampered cookies', async () => {
    const { cookie } = await login(app, 'alice', 'alice-password');
    const [header, payload] = cookie.slice('corral_session='.length).split('.');
    const forged = `corral_session=${header}.${payload}.${'A'.repeat(43)}`;
    expect((await get('/admin', forged)).statusCode).toBe(401);
    expect((await get('/admin', 'corral_session=garbage')).statusCode).toBe(401);
    expect((await env.store.auditLog.recent({ action: 'auth.session' })).length).toBe(2);
  });
});
