import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiToken } from '../../src/auth/tokens.js';
import type { Role } from '../../src/auth/principal.js';
import type { Store } from '../../src/store/database.js';
import type { Config } from '../../src/config/schema.js';
import { buildTestApp, clock, passwords, tempStore, type TestClock } from './helpers.js';

const REMOTE = '203.0.113.7';

describe('role × endpoint matrix', () => {
  let env: ReturnType<typeof tempStore>;
  let app: FastifyInstance;
  const tokens = {} as Record<Role, string>;

  beforeEach(async () => {
    env = tempStore();
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      tokens[role] = (await createApiToken(env.store, { name: `t-${role}`, role })).secret;
    }
    app = await buildTestApp(env.store, { config: { mode: 'required' } });
  });
  afterEach(async () => {
    await app.close();
    await env.cleanup();
  });

  const endpoints = [
    { method: 'GET', url: '/api/tags', needs: 'viewer' },
    { method: 'POST', url: '/api/chat', needs: 'viewer', payload: { model: 'm' } },
    { method: 'POST', url: '/v1/chat/completions', needs: 'viewer', payload: { model: 'm' } },
    { method: 'POST', url: '/api/pull', needs: 'operator', payload: {} },
    { method: 'DELETE', url: '/api/delete', needs: 'admin' },
  ] as const;
  const rank = { viewer: 0, operator: 1, admin: 2 };

  for (const ep of endpoints) {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const allowed = rank[role] >= rank[ep.needs];
      it(`${role} ${ep.method} ${ep.url} → ${allowed ? 200 : 403}`, async () => {
        const res = await app.inject({
          method: ep.method,
          url: ep.url,
          headers: { authorization: `Bearer ${tokens[role]}` },
          ...('payload' in ep ? { payload: ep.payload } : {}),
        });
        expect(res.statusCode).toBe(allowed ? 200 : 403);
        if (!allowed && ep.url.startsWith('/v1/')) expect(res.json().error.type).toBe('permission_error');
        if (!allowed && ep.url.startsWith('/api/')) expect(typeof res.json().error).toBe('string');
      });
    }
    it(`no credential ${ep.method} ${ep.url} → 401 in required mode`, async () => {
      const res = await app.inject({
        method: ep.method,
        url: ep.url,
        ...('payload' in ep ? { payload: ep.payload } : {}),
      });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });
  }

  it('public routes need nothing, but a bad credential is still rejected (fail closed)', async () => {
    expect((await app.inject({ url: '/api/version' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/' })).statusCode).toBe(200);
    const bad = await app.inject({ url: '/api/version', headers: { authorization: 'Bearer corral_nope' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toEqual({ error: expect.stringContaining('malformed') });
  });

  it('refuses to start with a route that has no rule in the route table', async () => {
    await expect(
      buildTestApp(env.store, { routes: (a) => a.post('/api/unlisted', async () => ({ ok: true })) }),
    ).rejects.toThrow(/routes without a rule in src\/auth\/roles\.ts: POST \/api\/unlisted/);
  });

  it('audits operator/admin actions and denials', async () => {
    await app.inject({ method: 'DELETE', url: '/api/delete', headers: { authorization: `Bearer ${tokens.admin}` } });
    await app.inject({ method: 'DELETE', url: '/api/delete', headers: { authorization: `Bearer ${tokens.viewer}` } });
    const rows = await env.store.auditLog.recent();
    expect(rows.find((r) => r.action === 'model.delete')).toMatchObject({
      actor: 't-admin',
      target: 'some-model',
      outcome: 'success',
    });
    expect(rows.find((r) => r.action === 'auth.role')).toMatchObject({ actor: 't-viewer', outcome: 'denied' });
  });
});

describe('modes, addresses and token states', () => {
  let env: ReturnType<typeof tempStore>;
  let store: Store;
  let t: TestClock;
  const apps: FastifyInstance[] = [];
  const build = async (config: Partial<Config['auth']> = {}) => {
    const app = await buildTestApp(store, { config, now: t.now });
    apps.push(app);
    return app;
  };

  beforeEach(() => {
    env = tempStore();
    store = env.store;
    t = clock();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await env.cleanup();
  });

  it('loopback-open: local clients need no token, remote ones do', async () => {
    const app = await build();
    const local = await app.inject({ method: 'POST', url: '/api/chat', payload: { model: 'm' } });
    expect(local.statusCode).toBe(200);
    expect(local.json().principal).toMatchObject({ kind: 'anonymous-loopback' });
    expect((await app.inject({ url: '/api/tags', remoteAddress: '::1' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/tags', remoteAddress: REMOTE })).statusCode).toBe(401);
    const v1 = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      remoteAddress: REMOTE,
      payload: { model: 'm' },
    });
    expect(v1.statusCode).toBe(401);
    expect(v1.json().error).toMatchObject({ type: 'authentication_error' });
  });

  it('off: everyone is let in; a placeholder key is ignored, a bad Corral token refused', async () => {
    const app = await build({ mode: 'off' });
    expect((await app.inject({ method: 'DELETE', url: '/api/delete', remoteAddress: REMOTE })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/tags', headers: { authorization: 'Basic eDp5' } })).statusCode).toBe(200);
    const bad = await app.inject({ url: '/api/tags', headers: { authorization: `Bearer corral_${'A'.repeat(43)}` } });
    expect(bad.statusCode).toBe(401);
  });

  it('honours X-Forwarded-For only from trusted proxies, and never treats a proxied request as loopback', async () => {
    const app = await build({ trusted_proxies: ['10.0.0.0/8', '127.0.0.1'] });
    // A remote client behind the trusted proxy is remote.
    const proxied = await app.inject({
      url: '/api/tags',
      remoteAddress: '10.1.2.3',
      headers: { 'x-forwarded-for': REMOTE },
    });
    expect(proxied.statusCode).toBe(401);
    // An untrusted peer cannot claim to be loopback.
    const spoof = await app.inject({
      url: '/api/tags',
      remoteAddress: REMOTE,
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(spoof.statusCode).toBe(401);
    // Nor can a client prepend loopback in front of the proxy's own entry.
    const prepend = await app.inject({
      url: '/api/tags',
      remoteAddress: '10.1.2.3',
      headers: { 'x-forwarded-for': `127.0.0.1, ${REMOTE}` },
    });
    expect(prepend.statusCode).toBe(401);
    // "127.0.0.1" from a proxy means local to the proxy, not to Corral.
    const local = await app.inject({
      url: '/api/tags',
      remoteAddress: '10.1.2.3',
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(local.statusCode).toBe(401);
    // A proxy on this host that sends no (or no usable) X-Forwarded-For does not make its callers loopback.
    for (const xff of [undefined, 'garbage', '']) {
      const res = await app.inject({
        url: '/api/tags',
        remoteAddress: '127.0.0.1',
        headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
      });
      expect(res.statusCode, String(xff)).toBe(401);
    }
    // Without trusted proxies, the same local caller is loopback.
    const direct = await build();
    expect((await direct.inject({ url: '/api/tags', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
  });

  it('rejects expired, revoked, unknown and malformed Corral tokens even from loopback', async () => {
    const app = await build();
    const expiring = await createApiToken(store, { name: 'exp', role: 'viewer', expiresAt: t.now() + 60_000 }, t.now());
    const revoked = await createApiToken(store, { name: 'rev', role: 'viewer' }, t.now());
    await store.apiTokens.revoke(revoked.id);
    const call = (auth: string, header = 'authorization') =>
      app.inject({ url: '/api/tags', headers: { [header]: auth } });
    expect((await call(`Bearer ${expiring.secret}`)).statusCode).toBe(200);
    t.advance(60_000);
    const expired = await call(`Bearer ${expiring.secret}`);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error).toContain('expired');
    expect((await call(`Bearer ${revoked.secret}`)).json().error).toContain('revoked');
    expect((await call(revoked.secret, 'x-api-key')).json().error).toContain('revoked');
    expect((await call(`Bearer corral_${'A'.repeat(43)}`)).json().error).toContain('unknown');
    for (const bad of [
      `Bearer ${revoked.secret.slice(0, -5)}`,
      `Token ${revoked.secret}`,
      `Bearer ${revoked.secret} extra`,
      'Bearer corral_',
    ]) {
      expect((await call(bad)).statusCode, bad).toBe(401);
    }
    expect((await call('corral_short', 'x-api-key')).statusCode).toBe(401);
    const failures = await store.auditLog.recent({ action: 'auth.token' });
    expect(failures.map((r) => r.detail)).toEqual(
      expect.arrayContaining(['expired', 'revoked', 'unknown', 'malformed']),
    );
  });

  it('ignores a credential that is not a Corral token where none is needed, and refuses it where one is', async () => {
    const placeholders = [
      { authorization: 'Bearer ollama' },
      { authorization: 'Bearer sk-placeholder' },
      { authorization: 'Bearer' },
      { authorization: 'Basic eDp5' },
      { authorization: 'Bearer x y' },
      { 'x-api-key': 'anything' },
      { 'x-api-key': 'sk-ant-placeholder', authorization: 'Bearer ollama' },
    ];
    const open = await build();
    const required = await build({ mode: 'required' });
    for (const headers of placeholders) {
      const local = await open.inject({ method: 'POST', url: '/api/chat', headers, payload: { model: 'm' } });
      expect(local.statusCode, JSON.stringify(headers)).toBe(200);
      expect(local.json().principal).toMatchObject({ kind: 'anonymous-loopback' });
      const remote = await open.inject({ url: '/api/tags', headers, remoteAddress: REMOTE });
      expect(remote.statusCode, JSON.stringify(headers)).toBe(401);
      const anywhere = await required.inject({ url: '/api/tags', headers });
      expect(anywhere.statusCode, JSON.stringify(headers)).toBe(401);
      expect(anywhere.json().error).toContain('invalid API token');
      // A public route needs nothing, so a placeholder changes nothing there.
      expect((await required.inject({ url: '/api/version', headers })).statusCode).toBe(200);
    }
  });

  it('takes a Corral token in x-api-key like a bearer token where tokens are required', async () => {
    const app = await build({ mode: 'required' });
    const tok = await createApiToken(store, { name: 'k', role: 'viewer', models: ['m'] }, t.now());
    const res = await app.inject({
      method: 'POST',
      url: '/api/chat',
      headers: { 'x-api-key': tok.secret, authorization: 'Bearer ollama' },
      payload: { model: 'm' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().principal).toMatchObject({ kind: 'token', name: 'k' });
    const denied = await app.inject({
      method: 'POST',
      url: '/api/chat',
      headers: { 'x-api-key': tok.secret },
      payload: { model: 'other' },
    });
    expect(denied.statusCode).toBe(403);
  });

  it('records last use of a token without blocking', async () => {
    const app = await build();
    const tok = await createApiToken(store, { name: 'u', role: 'viewer' }, t.now());
    await app.inject({ url: '/api/tags', headers: { authorization: `Bearer ${tok.secret}` } });
    expect(store.writes.pending).toBe(1);
    expect((await store.apiTokens.list()).find((x) => x.id === tok.id)?.last_used_at).toBe(t.now());
  });

  it('enforces the model allow-list', async () => {
    const app = await build({ mode: 'required' });
    const tok = await createApiToken(store, { name: 'm', role: 'viewer', models: ['llama3', 'qwen:7b'] });
    const chat = (model: string, url = '/api/chat') =>
      app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${tok.secret}` }, payload: { model } });
    expect((await chat('llama3:latest')).statusCode).toBe(200);
    expect((await chat('qwen:7b')).statusCode).toBe(200);
    expect((await chat('qwen:14b')).statusCode).toBe(403);
    const v1 = await chat('mistral', '/v1/chat/completions');
    expect(v1.statusCode).toBe(403);
    expect(v1.json().error.message).toContain('not allowed');
  });

  it('limits requests per minute with Retry-After', async () => {
    const app = await build();
    const tok = await createApiToken(store, { name: 'r', role: 'viewer', rpm: 3 });
    const call = () => app.inject({ url: '/api/tags', headers: { authorization: `Bearer ${tok.secret}` } });
    for (let i = 0; i < 3; i++) expect((await call()).statusCode).toBe(200);
    const limited = await call();
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBe(20);
    t.advance(20_000);
    expect((await call()).statusCode).toBe(200);
    expect((await call()).statusCode).toBe(429);
  });

  it('limits tokens per day and resets at UTC midnight', async () => {
    const app = await build();
    const tok = await createApiToken(store, { name: 'd', role: 'viewer', tpd: 25 });
    const chat = () =>
      app.inject({
        method: 'POST',
        url: '/api/chat',
        headers: { authorization: `Bearer ${tok.secret}` },
        payload: { model: 'm' },
      });
    for (let i = 0; i < 3; i++) expect((await chat()).statusCode).toBe(200); // 10 tokens each
    await store.flush();
    const limited = await chat();
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBe(12 * 3600); // clock starts at 12:00 UTC
    t.advance(12 * 3600_000);
    expect((await chat()).statusCode).toBe(200);
  });

  it('keeps tokens out of the admin UI, which needs a login', async () => {
    const app = await build();
    const tok = await createApiToken(store, { name: 'a', role: 'admin' });
    await store.users.create('root', await passwords.hash('correct horse'), 'admin');
    const html = await app.inject({ url: '/admin', headers: { accept: 'text/html' } });
    expect(html.statusCode).toBe(302);
    expect(html.headers.location).toBe('/admin/login');
    expect((await app.inject({ url: '/admin' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/admin', headers: { authorization: `Bearer ${tok.secret}` } })).statusCode).toBe(
      401,
    );
    const hx = await app.inject({ method: 'POST', url: '/admin/users', headers: { 'hx-request': 'true' } });
    expect(hx.headers['hx-redirect']).toBe('/admin/login');
    expect((await app.inject({ url: '/admin/login' })).statusCode).toBe(200);
  });
});
