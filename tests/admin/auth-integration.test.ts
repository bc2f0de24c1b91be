import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { installBodyParsers } from '../../src/api/body-parser.js';
import { installErrorHandler } from '../../src/api/error-handler.js';
import { registerAdmin } from '../../src/admin/plugin.js';
import { accountsFromStore, requestLogFromStore } from '../../src/admin/store-bridge.js';
import { createAccounts } from '../../src/auth/accounts.js';
import { authPlugin } from '../../src/auth/plugin.js';
import { createPasswords } from '../../src/auth/passwords.js';
import { registerAuthRoutes } from '../../src/auth/routes.js';
import { createApiToken } from '../../src/auth/tokens.js';
import { openDatabase } from '../../src/store/database.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form } from './helpers.js';

let t: TestGateway;
let app: FastifyInstance;
beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: inject('fixtures').models.chat } } });
  const store = openDatabase(':memory:');
  const passwords = createPasswords(4);
  const accounts = createAccounts({ store, passwords });
  await accounts.addUser('ann', 'password1', 'operator');
  app = Fastify();
  installBodyParsers(app);
  installErrorHandler(app);
  await app.register(authPlugin, { store, config: t.gw.config().auth });
  await registerAuthRoutes(app, { store, passwords });
  const { catalog, scheduler } = t.gw;
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
    logsDir: () => t.dir,
    accounts: accountsFromStore(store, accounts, (o) => createApiToken(store, o)),
    requestLog: requestLogFromStore(store),
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await t?.close();
});

it('works behind the real auth plugin', async () => {
  const anon = await app.inject({ method: 'GET', url: '/admin', headers: { accept: 'text/html' } });
  expect(anon.statusCode).toBe(302);
  expect(anon.headers.location).toBe('/admin/login');
  const login = await app.inject({ method: 'GET', url: '/admin/login', headers: { accept: 'text/html' } });
  expect(login.statusCode).toBe(200);
  expect((await app.inject({ method: 'GET', url: '/admin/assets/admin.css' })).statusCode).toBe(200);
  const bad = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ username: 'ann', password: 'nope' }),
  });
  expect(bad.headers.location).toMatch(/\/admin\/login\?error=/);
  const ok = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ username: 'ann', password: 'password1' }),
  });
  expect(ok.statusCode).toBe(303);
  const cookie = String([ok.headers['set-cookie']].flat()[0]).split(';')[0]!;
  const page = await app.inject({ method: 'GET', url: '/admin', headers: { cookie, accept: 'text/html' } });
  expect(page.statusCode).toBe(200);
  expect(page.body).toContain('ann (operator)');
  expect(page.body).toContain('action="/admin/logout"');
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]!;
  const noCsrf = await app.inject({
    method: 'POST',
    url: '/admin/actions/unload',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ model: 'tiny' }),
  });
  expect(noCsrf.statusCode).toBe(403);
  const act = await app.inject({
    method: 'POST',
    url: '/admin/actions/unload',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ model: 'tiny', _csrf: csrf }),
  });
  expect(act.statusCode).toBe(303);
  const users = await app.inject({ method: 'GET', url: '/admin/users', headers: { cookie, accept: 'text/html' } });
  expect(users.statusCode).toBe(403);
  const tok = await app.inject({
    method: 'POST',
    url: '/admin/tokens',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ _csrf: csrf, name: 'ci', role: 'viewer' }),
  });
  expect(tok.statusCode).toBe(200);
  expect(tok.body).toMatch(/value="corral_[\w-]{43,}"/);
  const list = await app.inject({ method: 'GET', url: '/admin/tokens', headers: { cookie } });
  expect(list.body).toContain('ci');
  expect(list.body).toContain('ann');
});
