import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { ensureAdmin } from '../../src/auth/bootstrap.js';
import { createPasswords } from '../../src/auth/passwords.js';
import { openPostgresStore, POSTGRES_CREDENTIAL_CACHE_MS } from '../../src/store/postgres/store.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';

/** Two Corral nodes on one PostgreSQL database: one set of tokens, one set of limits. */
let db: TestDatabase;
let a: TestGateway;
let b: TestGateway;
const fixtures = inject('fixtures');
const silent = { info() {}, warn() {} };

beforeAll(async () => {
  db = await freshPostgresDatabase();
  const config = {
    auth: { mode: 'required' },
    store: { url: db.url },
    models: { tiny: { path: fixtures.models.chat } },
  };
  [a, b] = await Promise.all([startGateway(config), startGateway(config)]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await db?.drop();
});

const tags = (node: TestGateway, secret: string) =>
  fetch(`${node.url}/api/tags`, { headers: { authorization: `Bearer ${secret}` } });

it('a token made on one node works on the other, and its revocation reaches it within the cache time', async () => {
  const token = await createApiToken(a.gw.store, { name: 'shared', role: 'viewer' });
  expect((await tags(b, token.secret)).status).toBe(200);
  await a.gw.store.apiTokens.revoke(token.id);
  expect((await tags(a, token.secret)).status).toBe(401);
  // The other node reuses its lookup for up to POSTGRES_CREDENTIAL_CACHE_MS (tests/store/store.test.ts pins that).
  await expect
    .poll(async () => (await tags(b, token.secret)).status, { timeout: 5 * POSTGRES_CREDENTIAL_CACHE_MS, interval: 50 })
    .toBe(401);
});

it('counts requests per minute across nodes', async () => {
  const { secret } = await createApiToken(a.gw.store, { name: 'rpm', role: 'viewer', rpm: 3 });
  const statuses = [];
  for (const node of [a, b, a, b, a]) statuses.push((await tags(node, secret)).status);
  expect(statuses).toEqual([200, 200, 200, 429, 429]);
});

it('counts tokens per day across nodes', async () => {
  const { secret } = await createApiToken(a.gw.store, { name: 'tpd', role: 'viewer', tpd: 4 });
  const generate = (node: TestGateway) =>
    post(
      `${node.url}/api/generate`,
      { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 4 } },
      {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      },
    );
  expect((await generate(a)).status).toBe(200);
  // Usage is committed with the node's next batch of deferred writes (at most 100 ms later).
  await a.gw.store.flush();
  const refused = await generate(b);
  expect(refused.status).toBe(429);
  expect(((await refused.json()) as { error: string }).error).toContain('daily limit of 4 tokens');
});

it('nodes starting together from one CORRAL_ADMIN_PASSWORD create one admin between them', async () => {
  const other = await freshPostgresDatabase();
  const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore(other.url)));
  try {
    const env = { CORRAL_ADMIN_PASSWORD: 'shared-admin-password' };
    const passwords = createPasswords(4);
    const results = await Promise.all(stores.map((s) => ensureAdmin(s, env, silent, { passwords })));
    expect(results.map((r) => r.status).sort()).toEqual(['created', 'exists', 'exists']);
    expect(await stores[0]!.users.adminCount()).toBe(1);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
    await other.drop();
  }
});
