import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeGateway, type FakeGateway } from '../helpers/fake-gateway.js';
import { post } from '../helpers/gateway.js';

let t: FakeGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startFakeGateway({
    models: { tiny: { path: fixtures.models.chat }, hourly: { path: fixtures.models.chat2, keep_alive: '1h' } },
  });
});
afterAll(async () => t?.close());

async function expiresIn(name: string): Promise<number> {
  const ps = (await (await fetch(`${t.url}/api/ps`)).json()) as { models: { name: string; expires_at: string }[] };
  const m = ps.models.find((x) => x.name === name);
  if (!m) throw new Error(`${name} not in /api/ps`);
  return new Date(m.expires_at).getTime() - Date.now();
}

const gen = (body: Record<string, unknown>) =>
  post(`${t.url}/api/generate`, { model: 'tiny', prompt: 'x', stream: false, options: { num_predict: 1 }, ...body });

describe('keep_alive', () => {
  it.each([
    ['10m', 10 * 60_000],
    ['1h', 3_600_000],
    ['300s', 300_000],
    [120, 120_000],
    ['90', 90_000],
  ])('request keep_alive %j sets expires_at', async (keepAlive, ms) => {
    expect((await gen({ keep_alive: keepAlive })).status).toBe(200);
    const left = await expiresIn('tiny:latest');
    expect(left).toBeGreaterThan(ms - 5000);
    expect(left).toBeLessThanOrEqual(ms + 1000);
  });

  it('negative keep_alive never expires (expires_at far in the future, no timer)', async () => {
    await gen({ keep_alive: -1 });
    expect(await expiresIn('tiny:latest')).toBeGreaterThan(100 * 365 * 86_400_000);
    await gen({ keep_alive: '-1m' });
    expect(await expiresIn('tiny:latest')).toBeGreaterThan(100 * 365 * 86_400_000);
  });

  it("/api/ps shows a busy model's expiry as now + keep_alive on every call, not a cached one", async () => {
    await gen({ keep_alive: '10m' });
    // A held lease keeps the model busy for as long as the test needs, whatever the generation speed.
    const lease = await t.gw.scheduler.acquire(t.gw.schedulable(t.gw.catalog.resolve('tiny')!), {
      keepAliveMs: 600_000,
    });
    try {
      const expiry = async (): Promise<number> => {
        const ps = (await (await fetch(`${t.url}/api/ps`)).json()) as {
          models: { name: string; expires_at: string }[];
        };
        return new Date(ps.models.find((m) => m.name === 'tiny:latest')!.expires_at).getTime();
      };
      const first = await expiry();
      // Let the clock move on: the answer must move with it.
      const t0 = Date.now();
      while (Date.now() < t0 + 5) await new Promise((r) => setImmediate(r));
      expect(await expiry()).toBeGreaterThanOrEqual(first + 5);
    } finally {
      lease.release();
    }
  });

  it('keep_alive 0 unloads right after the request', async () => {
    const unloaded = once(t.gw.scheduler, 'unloaded');
    const res = await gen({ keep_alive: 0 });
    expect(res.status).toBe(200);
    expect(await unloaded).toEqual(['tiny:latest', 'keep_alive 0']);
    expect(t.gw.scheduler.loaded().find((l) => l.name === 'tiny:latest')).toBeUndefined();
  });

  it("the model's configured keep_alive applies when the request has none; the global default (5m) otherwise", async () => {
    await post(`${t.url}/api/generate`, { model: 'hourly', prompt: 'x', stream: false, options: { num_predict: 1 } });
    const hourly = await expiresIn('hourly:latest');
    expect(hourly).toBeGreaterThan(3_600_000 - 5000);
    await gen({});
    const tiny = await expiresIn('tiny:latest');
    expect(tiny).toBeGreaterThan(300_000 - 5000);
    expect(tiny).toBeLessThanOrEqual(300_000 + 1000);
  });

  it('an empty prompt loads (done_reason "load") with its keep_alive; keep_alive 0 with an empty prompt unloads', async () => {
    await t.gw.scheduler.unload('tiny:latest');
    const load = (await (await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: '7m' })).json()) as Record<
      string,
      unknown
    >;
    expect(load.done_reason).toBe('load');
    const left = await expiresIn('tiny:latest');
    expect(left).toBeGreaterThan(7 * 60_000 - 5000);
    const unload = (await (await post(`${t.url}/api/generate`, { model: 'tiny', keep_alive: 0 })).json()) as Record<
      string,
      unknown
    >;
    expect(unload.done_reason).toBe('unload');
    const ps = (await (await fetch(`${t.url}/api/ps`)).json()) as { models: { name: string }[] };
    expect(ps.models.map((m) => m.name)).not.toContain('tiny:latest');
  });
});
