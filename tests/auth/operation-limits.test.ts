import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { form, loginAs } from '../admin/helpers.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { editConfig } from '../scheduler/helpers.js';

const fixtures = inject('fixtures');

describe('rate limits per operation for non-admins', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({
      models: { tiny: { path: fixtures.models.chat } },
      operation_limits: {
        pull: { count: 1, per: '5m' },
        create: { count: 1, per: '1m' },
        model: { count: 2, per: '1m' },
      },
    });
  });
  afterAll(() => t?.close());

  const action = (cookie: string, csrf: string, what: 'load' | 'unload' | 'restart') =>
    t.gw.app.inject({
      method: 'POST',
      url: `/admin/actions/${what}`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf },
      payload: form({ model: 'tiny', _csrf: csrf }),
    });

  it('model operations from the admin UI: operators get 429 with Retry-After past the limit, admins never', async () => {
    const op = await loginAs(t, 'operator');
    expect((await action(op.cookie, op.csrf, 'unload')).statusCode).toBe(303);
    expect((await action(op.cookie, op.csrf, 'unload')).statusCode).toBe(303);
    const refused = await action(op.cookie, op.csrf, 'load');
    expect(refused.statusCode).toBe(429);
    // Two per minute refill one every 30 s.
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(25);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(30);
    expect(refused.json().error).toMatch(/too many model loads, unloads and restarts: at most 2 per 1m for non-admins/);
    expect((await t.gw.store.auditLog.recent({ action: 'model.load' }))[0]).toMatchObject({
      actor: 'operator',
      outcome: 'failure',
    });
    // Per user: another operator has a budget of their own; an admin is not limited.
    const other = await loginAs(t, 'operator', 'oscar');
    expect((await action(other.cookie, other.csrf, 'unload')).statusCode).toBe(303);
    const admin = await loginAs(t, 'admin');
    for (let i = 0; i < 4; i++) expect((await action(admin.cookie, admin.csrf, 'unload')).statusCode).toBe(303);
  });

  it('pulls, copies and keep_alive unloads over the API count per token', async () => {
    const { secret } = await createApiToken(t.gw.store, { name: 'ops', role: 'operator' });
    const auth = { authorization: `Bearer ${secret}` };
    // A refused pull still counts: the limit is on attempts, which is what protects the disk and network.
    const first = await post(`${t.url}/api/pull`, { model: 'not a valid name!', stream: false }, { headers: auth });
    expect(first.status).toBe(400);
    const second = await post(`${t.url}/api/pull`, { model: 'also/not valid!', stream: false }, { headers: auth });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(200);
    expect(((await second.json()) as { error: string }).error).toMatch(/^too many pulls: at most 1 per 5m/);

    expect(
      (await post(`${t.url}/api/copy`, { source: 'tiny', destination: 'tiny-copy' }, { headers: auth })).status,
    ).toBe(200);
    expect(
      (await post(`${t.url}/api/copy`, { source: 'tiny', destination: 'tiny-copy2' }, { headers: auth })).status,
    ).toBe(429);

    const unload = () => post(`${t.url}/api/generate`, { model: 'tiny', prompt: '', keep_alive: 0 }, { headers: auth });
    expect((await unload()).status).toBe(200);
    expect((await unload()).status).toBe(200);
    expect((await unload()).status).toBe(429);
    // Ordinary inference by the same token is not an operation.
    expect(
      (
        await post(
          `${t.url}/api/generate`,
          { model: 'tiny', prompt: 'x', stream: false, options: { num_predict: 1 } },
          { headers: auth },
        )
      ).status,
    ).toBe(200);
  });

  it('limits are hot-reloaded; a count of 0 means no limit', async () => {
    const state = await editConfig(t, (c) => void (c.operation_limits.pull.count = 0));
    expect(state.ok).toBe(true);
    const { secret } = await createApiToken(t.gw.store, { name: 'ops2', role: 'operator' });
    const auth = { authorization: `Bearer ${secret}` };
    for (let i = 0; i < 3; i++)
      expect((await post(`${t.url}/api/pull`, { model: 'bad name!', stream: false }, { headers: auth })).status).toBe(
        400,
      );
  });
});
