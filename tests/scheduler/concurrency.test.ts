import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from './helpers.js';

let t: TestGateway;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({
    models: {
      slots: { path: fixtures.models.chat, parallel: 2, queue_size: 10, ctx_size: 2048 },
      cold: { path: fixtures.models.chat2 },
      single: { path: fixtures.models.fim, parallel: 1, queue_size: 5 },
    },
  });
});
afterAll(async () => t?.close());

describe('slots and queue', () => {
  it('50 concurrent requests to 2 slots + queue 10: 12 served (4 handed to llama-server, 8 queued here), 38 refused at once with 503 + Retry-After, none hangs', async () => {
    await post(`${t.url}/api/generate`, { model: 'slots' });
    const pid = t.gw.scheduler.loaded().find((l) => l.name === 'slots:latest')!.pid!;
    // Freeze llama-server so no slot frees up while the 50 arrive: the split is then exact, not a race.
    process.kill(pid, 'SIGSTOP');
    let refused = 0;
    let allRefused!: () => void;
    const refusedAll = new Promise<void>((r) => (allRefused = r));
    const started = Date.now();
    const pending = Array.from({ length: 50 }, async () => {
      const res = await post(`${t.url}/api/generate`, {
        model: 'slots',
        prompt: 'x',
        stream: false,
        options: { num_predict: 50 },
      });
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 503 && ++refused === 38) allRefused();
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body, ms: Date.now() - started };
    });
    try {
      await refusedAll;
      const refusalsMs = Date.now() - started;
      // Two run in llama-server's slots and two wait inside it (one per slot, taken from the queue of 10).
      expect(t.gw.scheduler.loaded().find((l) => l.name === 'slots:latest')).toMatchObject({ inFlight: 4, queued: 8 });
      console.log(`50 concurrent: 38 refusals within ${refusalsMs} ms while 4 were with llama-server and 8 queued`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const results = await Promise.all(pending);
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 503);
    expect(ok).toHaveLength(12);
    expect(busy).toHaveLength(38);
    expect(ok.every((r) => r.body.eval_count === 50)).toBe(true);
    expect(busy.every((r) => Number(r.retryAfter) >= 1 && /server busy/.test(String(r.body.error)))).toBe(true);
    console.log(`50 concurrent: all 12 served within ${Math.max(...ok.map((r) => r.ms))} ms`);
    expect(t.gw.scheduler.loaded().find((l) => l.name === 'slots:latest')).toMatchObject({
      inFlight: 0,
      queued: 0,
      waitingForLoad: 0,
    });
  });

  it('concurrent first requests share one load: exactly one spawn', async () => {
    let loads = 0;
    const onLoaded = (name: string): void => void (name === 'cold:latest' && loads++);
    t.gw.scheduler.on('loaded', onLoaded);
    const pids = new Set<number>();
    const results = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await post(`${t.url}/api/generate`, {
          model: 'cold',
          prompt: 'x',
          stream: false,
          options: { num_predict: 1 },
        });
        const pid = t.gw.scheduler.loaded().find((l) => l.name === 'cold:latest')?.pid;
        if (pid) pids.add(pid);
        return res.status;
      }),
    );
    t.gw.scheduler.off('loaded', onLoaded);
    expect(results.every((s) => s === 200)).toBe(true);
    expect(loads).toBe(1);
    expect(pids.size).toBe(1);
  });

  it('a client that disconnects while queued leaves the queue', async () => {
    const find = () => t.gw.scheduler.loaded().find((l) => l.name === 'single:latest');
    // One slot, so llama-server holds two (one running, one waiting inside it); the third waits here.
    const first = post(`${t.url}/api/generate`, {
      model: 'single',
      prompt: 'x',
      stream: false,
      options: { num_predict: 600 },
    });
    const second = post(`${t.url}/api/generate`, {
      model: 'single',
      prompt: 'z',
      stream: false,
      options: { num_predict: 1 },
    });
    await until(t.gw.scheduler, () => find()?.inFlight === 2);
    const controller = new AbortController();
    const queued = post(
      `${t.url}/api/generate`,
      { model: 'single', prompt: 'y', stream: false, options: { num_predict: 1 } },
      { signal: controller.signal },
    ).catch((e: unknown) => e);
    await until(t.gw.scheduler, () => find()?.queued === 1);
    controller.abort();
    await until(t.gw.scheduler, () => find()?.queued === 0);
    expect(find()!.inFlight).toBe(2);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(await queued).toBeInstanceOf(Error);
    await until(t.gw.scheduler, () => find()?.inFlight === 0);
  });
});
