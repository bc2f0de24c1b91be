import { once } from 'node:events';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startFakeGateway, type FakeGateway } from '../helpers/fake-gateway.js';
import { ndjson, post } from '../helpers/gateway.js';
import { until } from './helpers.js';

const fixtures = inject('fixtures');
let t: FakeGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const gen = (tg: FakeGateway, model: string, body: Record<string, unknown> = {}) =>
  post(`${tg.url}/api/generate`, { model, prompt: 'x', stream: false, options: { num_predict: 1 }, ...body });
const names = (tg: FakeGateway) =>
  tg.gw.scheduler
    .loaded()
    .map((l) => l.name)
    .sort();

describe('limits and eviction', () => {
  it('max_loaded_models 1: a second model evicts the idle first one (LRU)', async () => {
    t = await startFakeGateway({
      scheduler: { max_loaded_models: 1 },
      models: { a: { path: fixtures.models.chat }, b: { path: fixtures.models.chat2 } },
    });
    expect((await gen(t, 'a')).status).toBe(200);
    const unloaded = once(t.gw.scheduler, 'unloaded');
    expect((await gen(t, 'b')).status).toBe(200);
    expect(await unloaded).toEqual(['a:latest', 'evicted for "b:latest"']);
    expect(names(t)).toEqual(['b:latest']);
  });

  it('never evicts a model with a request in flight: the new load waits until it is idle', async () => {
    t = await startFakeGateway({
      scheduler: { max_loaded_models: 1 },
      models: { a: { path: fixtures.models.chat }, b: { path: fixtures.models.chat2 } },
    });
    const long = post(`${t.url}/api/generate`, { model: 'a', prompt: 'x', options: { num_predict: 400 } });
    const tg = t;
    await until(tg.gw.scheduler, () => tg.gw.scheduler.loaded().some((l) => l.name === 'a:latest' && l.inFlight === 1));
    const second = gen(tg, 'b');
    const lines = await ndjson(await long);
    // The stream on "a" ran to completion: it was not killed to make room.
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: 400 });
    expect((await second).status).toBe(200);
    expect(names(tg)).toEqual(['b:latest']);
  });

  it('memory budget: a model that does not fit beside another evicts it', async () => {
    // Each tiny model is estimated at ~34 MB (0.5 MB weights, KV cache, 32 MiB compute buffer).
    t = await startFakeGateway({
      scheduler: { memory_budget: '50MB' },
      models: { a: { path: fixtures.models.chat }, b: { path: fixtures.models.chat2 } },
    });
    await gen(t, 'a');
    const est = t.gw.scheduler.loaded()[0]!.memoryBytes;
    expect(est).toBeLessThan(50e6);
    expect(2 * est).toBeGreaterThan(50e6);
    const unloaded = once(t.gw.scheduler, 'unloaded');
    await gen(t, 'b');
    expect((await unloaded)[0]).toBe('a:latest');
    const [only] = t.gw.scheduler.loaded();
    expect(only!.name).toBe('b:latest');
    expect(only!.memoryBytes + est).toBeGreaterThan(50e6);
    expect(t.gw.scheduler.status()).toMatchObject({
      memoryBudgetBytes: 50e6,
      loadedCount: 1,
      memoryUsedBytes: only!.memoryBytes,
    });
  });

  it('a model that can never fit gets a clear error at once instead of thrashing', async () => {
    t = await startFakeGateway({ scheduler: { memory_budget: '10MB' }, models: { a: { path: fixtures.models.chat } } });
    const started = Date.now();
    const res = await gen(t, 'a');
    expect(res.status).toBe(507);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^model "a:latest" needs ~\d+ MB but the memory budget is 10 MB$/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('swap group: loading one member unloads the others; models outside the group stay', async () => {
    t = await startFakeGateway({
      scheduler: { groups: { pair: ['a', 'b'] } },
      models: {
        a: { path: fixtures.models.chat },
        b: { path: fixtures.models.chat2 },
        c: { path: fixtures.models.fim },
      },
    });
    await gen(t, 'a');
    await gen(t, 'c');
    const unloaded = once(t.gw.scheduler, 'unloaded');
    await gen(t, 'b');
    expect((await unloaded)[0]).toBe('a:latest');
    expect(names(t)).toEqual(['b:latest', 'c:latest']);
  });

  it('pinned models load at start, never expire and are never evicted', async () => {
    t = await startFakeGateway({
      scheduler: { max_loaded_models: 2 },
      models: {
        p: { path: fixtures.models.chat, pinned: true, keep_alive: 0 },
        a: { path: fixtures.models.chat2 },
        b: { path: fixtures.models.fim },
      },
    });
    await t.gw.pinned;
    expect(names(t)).toEqual(['p:latest']);
    const ps = (await (await fetch(`${t.url}/api/ps`)).json()) as { models: { name: string; expires_at: string }[] };
    expect(new Date(ps.models[0]!.expires_at).getUTCFullYear()).toBeGreaterThan(2300);
    await gen(t, 'p'); // keep_alive 0 does not unload a pinned model
    await gen(t, 'a');
    await gen(t, 'b');
    expect(names(t)).toEqual(['b:latest', 'p:latest']);
  });
});
