import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AccountsStore, TokenRow, UserRow } from '../../src/admin/deps.js';
import { registerAdmin } from '../../src/admin/plugin.js';
import { installBodyParsers } from '../../src/api/body-parser.js';
import { installErrorHandler } from '../../src/api/error-handler.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form, session } from './helpers.js';

/** An in-memory accounts store with the shape the admin UI expects from src/store. */
function memoryStore(): AccountsStore & { tokens: TokenRow[]; users: UserRow[] } {
  const tokens: TokenRow[] = [];
  const users: UserRow[] = [{ id: 1, username: 'root', role: 'admin', disabled: false, createdAt: new Date() }];
  return {
    tokens,
    users,
    listTokens: () => tokens,
    createToken: ({ name, role }) => {
      const id = tokens.length + 1;
      tokens.push({ id, name, role, createdAt: new Date(), revoked: false });
      return { id, secret: `crl_secret_${id}` };
    },
    revokeToken: (id) => {
      const t = tokens.find((x) => String(x.id) === id);
      if (t) t.revoked = true;
    },
    listUsers: () => users,
    createUser: ({ username, role }) =>
      users.push({ id: users.length + 1, username, role, disabled: false, createdAt: new Date() }),
    setUserRole: (id, role) => void (users.find((u) => String(u.id) === id)!.role = role),
    resetPassword: () => {},
    setUserDisabled: (id, disabled) => void (users.find((u) => String(u.id) === id)!.disabled = disabled),
  };
}

let t: TestGateway;
let app: FastifyInstance;
let store: ReturnType<typeof memoryStore>;
const requests = [
  {
    at: new Date(Date.now() - 30_000),
    model: 'tiny:latest',
    who: '<b>token</b>',
    status: 200,
    promptTokens: 10,
    completionTokens: 20,
    ttftMs: 12.4,
    tokensPerSecond: 55.5,
    durationMs: 400,
  },
  { at: new Date(Date.now() - 5 * 60_000), model: 'tiny:latest', who: 'ann', status: 500, durationMs: 90 },
];
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
  store = memoryStore();
  const { catalog, scheduler } = t.gw;
  // The admin plugin alone over the same gateway parts, with a stand-in for the auth hook (the role comes from a
  // test header) so every role can be exercised quickly; auth-integration.test.ts covers the real auth plugin.
  app = Fastify();
  installBodyParsers(app);
  installErrorHandler(app);
  await registerAdmin(app, {
    catalog,
    scheduler,
    config: t.gw.config,
    schedulable: (m) => ({
      name: m.name,
      path: m.path,
      parallel: 1,
      queueSize: 4,
      ctxSize: 512,
      keepAliveMs: 60_000,
      memoryBytes: m.size,
      pinned: false,
      launch: { name: m.name, path: m.path, args: [], embedding: false },
    }),
    accounts: store,
    logsDir: () => t.dir,
    requestLog: { recent: ({ limit, model }) => requests.filter((r) => !model || r.model === model).slice(0, limit) },
  });
  app.addHook('onRequest', async (request) => {
    const role = request.headers['x-test-role'];
    if (typeof role === 'string')
      (request as unknown as { principal: unknown }).principal = { kind: 'user', role, name: `a ${role}`, userId: 7 };
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await t?.close();
});

const as = (role: string, s?: { cookie: string }) => ({
  'x-test-role': role,
  'content-type': 'application/x-www-form-urlencoded',
  ...(s ? { cookie: s.cookie } : {}),
});

describe('roles', () => {
  it('lets a viewer see the dashboard but not act on models', async () => {
    const page = await app.inject({ method: 'GET', url: '/admin', headers: as('viewer') });
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('/admin/actions/load');
    const s = await session(app, { 'x-test-role': 'viewer' });
    const res = await app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: as('viewer', s),
      payload: form({ model: 'tiny', _csrf: s.csrf }),
    });
    expect(res.statusCode).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('hides the users page from operators and the nav link from viewers', async () => {
    expect((await app.inject({ method: 'GET', url: '/admin/users', headers: as('operator') })).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/admin/users', headers: as('admin') })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin/tokens', headers: as('viewer') })).statusCode).toBe(403);
    const page = await app.inject({ method: 'GET', url: '/admin', headers: as('viewer') });
    expect(page.body).not.toContain('href="/admin/users"');
  });

  it('only an admin may reload the config', async () => {
    const s = await session(app, { 'x-test-role': 'operator' });
    const res = await app.inject({
      method: 'POST',
      url: '/admin/config/reload',
      headers: as('operator', s),
      payload: form({ _csrf: s.csrf }),
    });
    expect(res.statusCode).toBe(403);
  });
});

describe('tokens and users with a store', () => {
  it('creates a token, shows its secret once, escapes its name, and revokes it', async () => {
    const s = await session(app, { 'x-test-role': 'operator' });
    const created = await app.inject({
      method: 'POST',
      url: '/admin/tokens',
      headers: as('operator', s),
      payload: form({ _csrf: s.csrf, name: '<img src=x onerror=alert(1)>', role: 'viewer' }),
    });
    expect(created.statusCode).toBe(200);
    expect(created.body).toContain('crl_secret_1');
    expect(created.body).not.toContain('<img src=x');
    expect(created.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const list = await app.inject({ method: 'GET', url: '/admin/tokens', headers: as('operator') });
    expect(list.body).not.toContain('crl_secret_1');
    const revoked = await app.inject({
      method: 'POST',
      url: '/admin/tokens/revoke',
      headers: as('operator', s),
      payload: form({ _csrf: s.csrf, id: '1' }),
    });
    expect(revoked.statusCode).toBe(303);
    expect(store.tokens[0]!.revoked).toBe(true);
  });

  it('refuses a token with a higher role than the creator, and a create without CSRF', async () => {
    const s = await session(app, { 'x-test-role': 'operator' });
    const up = await app.inject({
      method: 'POST',
      url: '/admin/tokens',
      headers: as('operator', s),
      payload: form({ _csrf: s.csrf, name: 'x', role: 'admin' }),
    });
    expect(up.statusCode).toBe(403);
    const noCsrf = await app.inject({
      method: 'POST',
      url: '/admin/tokens',
      headers: as('operator', s),
      payload: form({ name: 'x', role: 'viewer' }),
    });
    expect(noCsrf.statusCode).toBe(403);
    expect(store.tokens).toHaveLength(1);
  });

  it('lets an admin add a user, change a role and disable them', async () => {
    const s = await session(app, { 'x-test-role': 'admin' });
    const post = (url: string, fields: Record<string, string>) =>
      app.inject({ method: 'POST', url, headers: as('admin', s), payload: form({ _csrf: s.csrf, ...fields }) });
    expect(
      (await post('/admin/users/create', { username: 'ann', password: 'longenough', role: 'viewer' })).statusCode,
    ).toBe(303);
    expect((await post('/admin/users/create', { username: 'bob', password: 'short', role: 'viewer' })).statusCode).toBe(
      400,
    );
    expect((await post('/admin/users/role', { id: '2', role: 'operator' })).statusCode).toBe(303);
    expect((await post('/admin/users/disable', { id: '2' })).statusCode).toBe(303);
    expect(store.users[1]).toMatchObject({ username: 'ann', role: 'operator', disabled: true });
    const page = await app.inject({ method: 'GET', url: '/admin/users', headers: as('admin') });
    expect(page.body).toContain('ann');
  });
});

describe('activity', () => {
  it('lists recent requests (escaped) and draws the charts as inline SVG', async () => {
    const res = await app.inject({ method: 'GET', url: '/admin/activity', headers: as('viewer') });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('&lt;b&gt;token&lt;/b&gt;');
    expect(res.body).toContain('55.5');
    expect(res.body.match(/<svg /g)).toHaveLength(3);
    expect(res.body).toMatch(/<polyline points="[\d.,\s]+"/);
    const model = await app.inject({ method: 'GET', url: '/admin/model?name=tiny', headers: as('viewer') });
    expect(model.body).toContain('12 ms');
  });
});
