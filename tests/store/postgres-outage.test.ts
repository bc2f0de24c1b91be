import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { openPostgresStore, POSTGRES_CREDENTIAL_CACHE_MS } from '../../src/store/postgres/store.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { TestPostgres } from '../setup/postgres-server.js';

/**
 * PostgreSQL goes away under a running node and comes back: its own server, since the run's shared
 * one must stay up for the other files.
 */
let server: TestPostgres;
let t: TestGateway;
const logs: Record<string, unknown>[] = [];
const fixtures = inject('fixtures');

beforeAll(async () => {
  server = await TestPostgres.create();
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  t = await startGateway(
    {
      auth: { mode: 'required' },
      store: { url: await server.createDatabase() },
      models: { tiny: { path: fixtures.models.chat } },
    },
    { logger: { level: 'info', stream } },
  );
});
afterAll(async () => {
  await t?.close();
  await server?.destroy();
});

const asToken = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });
const ready = async () => (await fetch(`${t.url}/ready`)).status;
const generate = (secret: string) =>
  post(
    `${t.url}/api/generate`,
    { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } },
    {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    },
  );

it('serves credentials seen in the last minute while PostgreSQL is down, refuses others, and recovers', async () => {
  // Limits too: their buckets and counts fall back to what this node knows.
  const seen = await createApiToken(t.gw.store, { name: 'seen', role: 'viewer', rpm: 1000, tpd: 1_000_000 });
  const unseen = await createApiToken(t.gw.store, { name: 'unseen', role: 'viewer' });
  expect((await generate(seen.secret)).status).toBe(200);
  expect(await ready()).toBe(200);

  await server.stop();
  const notReady = await fetch(`${t.url}/ready`);
  expect(notReady.status).toBe(503);
  expect(((await notReady.json()) as { checks: { store: string } }).checks.store).toMatch(/PostgreSQL is unreachable/);
  expect(logs.some((l) => l.msg === 'store unreachable' && l.level === 50)).toBe(true);

  // Past the cache's fresh window, so the token is looked up again and the outage is what answers.
  await sleep(POSTGRES_CREDENTIAL_CACHE_MS + 100);
  const served = await generate(seen.secret);
  expect(served.status).toBe(200);
  expect((await fetch(`${t.url}/api/tags`, asToken(seen.secret))).status).toBe(200);
  const refused = await fetch(`${t.url}/api/tags`, asToken(unseen.secret));
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: string }).error).toMatch(/PostgreSQL is unreachable/);
  const anonymous = await fetch(`${t.url}/api/tags`);
  expect(anonymous.status).toBe(401);
  expect(t.gw.store.writes.pending).toBeGreaterThan(0);

  await server.start();
  await expect.poll(ready, { timeout: 15_000, interval: 200 }).toBe(200);
  expect(logs.some((l) => l.msg === 'store reachable again')).toBe(true);
  expect((await fetch(`${t.url}/api/tags`, asToken(unseen.secret))).status).toBe(200);
  // What was served during the outage reached the database once it was back.
  const rows = await t.gw.store.requestLog.recent({ model: 'tiny:latest' });
  expect(rows.filter((r) => r.principal === 'seen')).toHaveLength(2);
  expect(t.gw.store.writes.pending).toBe(0);
});

it('waits at start for a server that is not up yet, and names an unreachable one without its password', async () => {
  const url = await server.createDatabase();
  await server.stop();
  const password = new URL(url).password;
  await expect(openPostgresStore(url, { startupWaitMs: 0 })).rejects.toThrow(
    /PostgreSQL store postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/corral_test_\w+: .*ECONNREFUSED/,
  );
  await expect(openPostgresStore(url, { startupWaitMs: 0 })).rejects.not.toThrow(password);
  const opening = openPostgresStore(url, { startupWaitMs: 30_000 });
  await server.start();
  const store = await opening;
  expect(await store.problem()).toBeUndefined();
  await store.close();
});
