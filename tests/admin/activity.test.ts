import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { loginAs, waitFor, type Session } from './helpers.js';

const fixtures = inject('fixtures');
let t: TestGateway;
let admin: Session;

beforeAll(async () => {
  // One slot and no queue: a second request while one is in flight is turned away with 503.
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat, parallel: 1, queue_size: 0 } } });
  admin = await loginAs(t, 'admin');
});
afterAll(async () => t?.close());

const statuses = async () => {
  await t.gw.store.requestLog.flush();
  return (await t.gw.store.requestLog.recent({ limit: 100 })).map((r) => r.status);
};

/**
 * A chat that holds the model's only slot for as long as the test wants: its llama-server is stopped
 * (SIGSTOP) before the request, so the request waits on it with its lease taken. `abort` is the
 * client giving up; `resume` lets the child run again.
 */
async function holdSlot(): Promise<{ abort(): void; resume(): void }> {
  const pid = t.gw.scheduler.loaded().find((l) => l.name === 'tiny:latest')?.runner.pid;
  if (pid === undefined) throw new Error('tiny is not loaded');
  process.kill(pid, 'SIGSTOP');
  const ctrl = new AbortController();
  void post(
    `${t.url}/api/chat`,
    { model: 'tiny', messages: [{ role: 'user', content: 'go on' }], options: { num_predict: 8 } },
    { signal: ctrl.signal },
  ).catch(() => undefined);
  await waitFor(() => t.gw.scheduler.loaded().some((l) => l.name === 'tiny:latest' && l.inFlight === 1));
  return {
    abort: () => ctrl.abort(),
    resume: () => process.kill(pid, 'SIGCONT'),
  };
}

describe('Activity', () => {
  it('logs rejections (401, 429, 503), cancellations and client errors, not only successes', async () => {
    const limited = (await createApiToken(t.gw.store, { name: 'limited', role: 'viewer', rpm: 1 })).secret;
    const bearer = (secret: string) => ({
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    });
    const body = { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } };
    expect((await post(`${t.url}/api/generate`, body, bearer(limited))).status).toBe(200);
    expect((await post(`${t.url}/api/generate`, body, bearer(limited))).status).toBe(429);
    expect((await post(`${t.url}/api/generate`, body, bearer(`corral_${'x'.repeat(43)}`))).status).toBe(401);
    expect((await post(`${t.url}/api/generate`, { ...body, model: 'no-such-model' })).status).toBe(404);
    const held = await holdSlot();
    try {
      expect((await post(`${t.url}/api/generate`, body)).status).toBe(503);
      held.abort();
      await waitFor(async () => (await statuses()).includes(499));
    } finally {
      held.resume();
    }
    expect(await statuses()).toEqual(expect.arrayContaining([200, 429, 401, 404, 503, 499]));

    const page = await t.gw.app.inject({ method: 'GET', url: '/admin/activity', headers: { cookie: admin.cookie } });
    expect(page.statusCode).toBe(200);
    const count = (outcome: string) =>
      Number(new RegExp(`data-testid="count-${outcome}">(\\d+)<`).exec(page.body)?.[1]);
    expect(count('rejected')).toBe(3);
    expect(count('cancelled')).toBe(1);
    expect(count('client-error')).toBe(1);
    expect(count('ok')).toBeGreaterThanOrEqual(1);
    for (const [status, words] of [
      [401, 'no valid credential'],
      [429, 'rate limited'],
      [503, 'busy or unavailable'],
      [499, 'cancelled by the client'],
      [404, 'not found'],
    ] as const) {
      expect(page.body).toMatch(
        new RegExp(`data-status="${status}"[\\s\\S]*?<span class="status">${status}</span> ${words}`),
      );
    }
    // The 404 names the model it asked for; a request refused before its body was read has none.
    expect(page.body).toMatch(/<td data-label="Model">no-such-model<\/td>/);
    expect(page.body).toMatch(/data-status="429"[\s\S]*?<td data-label="Who">limited<\/td>/);
  });

  it('draws charts with axes, units and labels', async () => {
    const page = await t.gw.app.inject({ method: 'GET', url: '/admin/activity', headers: { cookie: admin.cookie } });
    const charts = page.body.split('<figure class="card chart">').slice(1);
    expect(charts).toHaveLength(3);
    for (const [i, unit] of ['req/min', 'tokens/s', 'ms'].entries()) {
      const svg = charts[i]!;
      expect(svg).toMatch(new RegExp(`class="axis-title"[^>]*>${unit}</text>`));
      expect(svg).toContain('>time (minutes)</text>');
      expect(svg).toMatch(/data-axis="x">now<\/text>/);
      expect(svg).toMatch(/data-axis="x">−30 min<\/text>/);
      // Three y ticks from 0 to a round maximum.
      expect(svg.match(/data-axis="y">/g)).toHaveLength(3);
      expect(svg).toMatch(/data-axis="y">0(\.0)?<\/text>/);
      expect(svg).toMatch(/<ul class="legend">/);
    }
    // Requests per minute: all requests and those that did not succeed, in the legend.
    expect(charts[0]).toMatch(/<li class="series-all">all requests<\/li><li class="series-bad">not successful<\/li>/);
  });

  it('updates live: a new request reaches an open Activity page over its event stream', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${t.url}/admin/activity/events`, {
      headers: { cookie: admin.cookie },
      signal: ctrl.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const next = async (pattern: RegExp): Promise<void> => {
      while (!pattern.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        seen += decoder.decode(value, { stream: true });
      }
    };
    await next(/event: activity\n/);
    expect(seen).not.toContain('live-marker');
    seen = '';
    await post(`${t.url}/api/generate`, { model: 'live-marker', prompt: 'x' });
    await next(/live-marker/);
    expect(seen).toMatch(/event: activity\n[\s\S]*data-status="404"/);
    ctrl.abort();
  });
});
