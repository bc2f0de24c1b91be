import { once } from 'node:events';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { FailureRecord } from '../../src/scheduler/supervisor.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { editConfig, pidOf } from './helpers.js';

const fixtures = inject('fixtures');
let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});
const backoff = { initial: '20ms', max: '80ms', max_restarts: 3, reset_after: '1m' };
const gen = (tg: TestGateway, model: string) =>
  post(`${tg.url}/api/generate`, { model, prompt: 'x', stream: false, options: { num_predict: 2 } });

describe('supervision', () => {
  it('kill -9 of a child: failed with exit signal and last lines, and the next request succeeds', async () => {
    t = await startGateway({ scheduler: { restart_backoff: backoff }, models: { a: { path: fixtures.models.chat } } });
    await gen(t, 'a');
    const pid = pidOf(t, 'a:latest')!;
    const failed = once(t.gw.scheduler, 'failed') as Promise<[string, FailureRecord]>;
    process.kill(pid, 'SIGKILL');
    const [name, rec] = await failed;
    expect(name).toBe('a:latest');
    expect(rec.failure.signal).toBe('SIGKILL');
    expect(rec.failure.lastLines.length).toBeGreaterThan(0);
    expect(t.gw.scheduler.status().failures[0]).toMatchObject({
      name: 'a:latest',
      consecutive: 1,
      gaveUp: false,
      blocked: false,
    });
    const res = await gen(t, 'a');
    expect(res.status).toBe(200);
    expect(pidOf(t, 'a:latest')).not.toBe(pid);
  });

  it('a pinned model is restarted after a crash, with backoff', async () => {
    t = await startGateway({
      scheduler: { restart_backoff: backoff },
      models: { p: { path: fixtures.models.chat, pinned: true } },
    });
    await t.gw.pinned;
    const pid = pidOf(t, 'p:latest')!;
    const restarting = once(t.gw.scheduler, 'restarting');
    const loaded = once(t.gw.scheduler, 'loaded');
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    expect(await restarting).toEqual(['p:latest', 1]);
    await loaded;
    console.log(`pinned restart: ready again ${Date.now() - killedAt} ms after kill -9 (backoff 20 ms)`);
    const again = pidOf(t, 'p:latest');
    expect(again).toBeDefined();
    expect(again).not.toBe(pid);
  });

  it('a crash-looping pinned model stops restarting and requests get its error at once', async () => {
    t = await startGateway({
      scheduler: { restart_backoff: backoff },
      models: { bad: { path: fixtures.models.broken, pinned: true } },
    });
    const tg = t;
    let failures = 0;
    tg.gw.scheduler.on('failed', () => failures++);
    const [, rec] = (await once(tg.gw.scheduler, 'gave-up')) as [string, FailureRecord];
    expect(rec.consecutive).toBe(3);
    expect(failures).toBe(3);
    expect(rec.failure.reason).toMatch(/failed to load/i);
    const started = Date.now();
    const res = await gen(tg, 'bad');
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /crash-looping \(3 failures in a row\).*failed to load/i,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(failures).toBe(3); // the request did not spawn anything
    expect(tg.gw.scheduler.status().failures).toEqual([
      expect.objectContaining({ name: 'bad:latest', gaveUp: true, blocked: true }),
    ]);
  });

  it('fixing a crash-looping model without a process clears its breaker at the config reload', async () => {
    t = await startGateway({
      scheduler: { restart_backoff: backoff },
      models: { bad: { path: fixtures.models.broken } },
    });
    for (let i = 0; i < 3; i++) expect((await gen(t, 'bad')).status).toBe(500);
    const refused = await gen(t, 'bad');
    expect(((await refused.json()) as { error: string }).error).toMatch(/crash-looping \(3 failures in a row\)/);
    expect(t.gw.scheduler.loaded()).toEqual([]);

    const state = await editConfig(t, (c) => void (c.models.bad.path = fixtures.models.chat));
    expect(state.changes).toContain('bad:latest: set up differently, its failures are forgotten');
    expect(t.gw.scheduler.status().failures).toEqual([]);
    expect((await gen(t, 'bad')).status).toBe(200);
  });

  it('a crash-looping pinned model whose config is fixed loads at once', async () => {
    t = await startGateway({
      scheduler: { restart_backoff: backoff },
      models: { bad: { path: fixtures.models.broken, pinned: true } },
    });
    await once(t.gw.scheduler, 'gave-up');
    const loaded = once(t.gw.scheduler, 'loaded');
    await editConfig(t, (c) => void (c.models.bad.path = fixtures.models.chat));
    expect((await loaded)[0]).toBe('bad:latest');
    expect(pidOf(t, 'bad:latest')).toBeDefined();
  });

  it('a reload that leaves a failed model as it was keeps its breaker', async () => {
    t = await startGateway({
      scheduler: { restart_backoff: backoff },
      models: { bad: { path: fixtures.models.broken, pinned: true } },
    });
    await once(t.gw.scheduler, 'gave-up');
    const state = await editConfig(t, (c) => void (c.defaults.keep_alive = '10m'));
    expect(state.ok).toBe(true);
    expect(t.gw.scheduler.status().failures).toEqual([expect.objectContaining({ name: 'bad:latest', blocked: true })]);
  });
});
