import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { loginAs, waitFor } from '../admin/helpers.js';
import { editConfig } from '../scheduler/helpers.js';
import { startReceiver, type Receiver } from './webhook-receiver.js';

const fixtures = inject('fixtures');

interface JsonNote {
  status: 'firing' | 'resolved';
  rule: string;
  subject: string;
  severity: string;
  summary: string;
  started_at: string;
  resolved_at: string | null;
}
const note = (body: string): JsonNote => JSON.parse(body) as JsonNote;
const is = (status: string, rule: string, subject: string) => (body: string) => {
  const n = note(body);
  return n.status === status && n.rule === rule && n.subject === subject;
};

describe('alerts delivered to webhooks', () => {
  let t: TestGateway;
  let hooks: Receiver;

  /** Resolves after `n` more rule evaluations. */
  const evaluations = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await once(t.gw.app.alerts, 'evaluated');
  };

  beforeAll(async () => {
    hooks = await startReceiver();
    t = await startGateway({
      scheduler: { restart_backoff: { initial: '50ms', max: '200ms', max_restarts: 3, reset_after: '1s' } },
      models: {
        broken: { path: fixtures.models.broken, pinned: true },
        busy: { path: fixtures.models.chat, parallel: 1, queue_size: 0, ctx_size: 8192 },
      },
      alerts: {
        interval: '100ms',
        retry: { initial: '50ms', max: '200ms' },
        webhooks: [
          { url: `${hooks.url}/json`, format: 'json' },
          { url: `${hooks.url}/slack?secret=s3cret`, format: 'slack', min_severity: 'critical' },
          { url: `${hooks.url}/ntfy`, format: 'ntfy', headers: { Authorization: 'Bearer tk' } },
        ],
        rules: { queue_full: { window: '3s', min_requests: 4, percent: 20, cooldown: '1s' } },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await hooks?.close();
  });

  it('a crash loop fires once (retried past a failing webhook), stays deduplicated while firing, resolves when fixed', async () => {
    hooks.failNext('/json', 1, is('firing', 'model_crash_loop', 'broken:latest'));
    const fired = await hooks.waitFor('/json', is('firing', 'model_crash_loop', 'broken:latest'));
    expect(note(fired.body)).toMatchObject({ severity: 'critical', resolved_at: null });
    expect(note(fired.body).summary).toMatch(/broken:latest is crash-looping \(3 failures in a row\)/);
    // The first delivery got a 500 and was retried with the same body.
    const attempts = hooks.received.filter((r) => r.path === '/json' && r.body === fired.body);
    expect(attempts.map((r) => r.answered)).toEqual([500, 200]);

    // While it fires: more evaluations and more refused requests send nothing new.
    expect((await post(`${t.url}/api/generate`, { model: 'broken', prompt: 'x', stream: false })).status).toBe(500);
    await evaluations(5);
    expect(hooks.accepted('/json', is('firing', 'model_crash_loop', 'broken:latest'))).toHaveLength(1);
    const slack = await hooks.waitFor('/slack', (b) => b.includes('FIRING'));
    expect(slack.headers['content-type']).toBe('application/json');
    expect((JSON.parse(slack.body) as { text: string }).text).toMatch(
      /:rotating_light: \*FIRING \[critical\] model_crash_loop broken:latest\*/,
    );
    const ntfy = await hooks.waitFor('/ntfy', (b) => b.includes('crash-looping'));
    expect(ntfy.headers).toMatchObject({ priority: '5', tags: 'rotating_light', authorization: 'Bearer tk' });
    expect(ntfy.headers.title).toMatch(/^Corral on .+: FIRING \[critical\] model_crash_loop broken:latest$/);

    // Shown on the Alerts page, the banner and /metrics.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain(
      'corral_alerts_firing{rule="model_crash_loop",severity="critical",subject="broken:latest"} 1',
    );
    expect(metrics).toContain('corral_model_crash_looping{model="broken:latest"} 1');
    expect(t.gw.app.alerts.firing().map((a) => a.rule)).toContain('model_crash_loop');
    const viewer = await loginAs(t, 'viewer');
    const page = (await t.gw.app.inject({ url: '/admin/alerts', headers: { cookie: viewer.cookie } })).body;
    expect(page).toMatch(/data-testid="alert-banner"[\s\S]*broken:latest is crash-looping/);
    expect(page).toMatch(/data-testid="firing"[\s\S]*model_crash_loop[\s\S]*broken:latest/);
    // The page names a webhook's host, never its secret-bearing URL.
    expect(page).toContain('slack → <code>127.0.0.1:');
    expect(page).not.toContain('s3cret');

    // Fixed: the model points at a good file, and once the breaker lets a load through it runs.
    const reload = await editConfig(t, (c) => void (c.models.broken.path = fixtures.models.chat));
    expect(reload.ok).toBe(true);
    await waitFor(async () => (await post(`${t.url}/api/generate`, { model: 'broken', prompt: '' })).status === 200);
    const resolved = await hooks.waitFor('/json', is('resolved', 'model_crash_loop', 'broken:latest'));
    expect(note(resolved.body).started_at).toBe(note(fired.body).started_at);
    expect(note(resolved.body).resolved_at).not.toBeNull();
    await hooks.waitFor('/slack', (b) => b.includes(':white_check_mark: *RESOLVED [critical] model_crash_loop'));
    const ntfyResolved = await hooks.waitFor(
      '/ntfy',
      (_, r) => r.headers.tags === 'white_check_mark' && String(r.headers.title).includes('model_crash_loop'),
    );
    expect(ntfyResolved.headers).toMatchObject({ priority: '3' });
    expect(ntfyResolved.headers.title).toMatch(/RESOLVED \[critical\] model_crash_loop broken:latest$/);
    const history = (await t.gw.store.alertHistory.recent()).find((e) => e.rule === 'model_crash_loop');
    expect(history).toMatchObject({ subject: 'broken:latest', notified: true });
    expect(history!.resolvedAt).toBeGreaterThan(history!.startedAt);
  });

  it('a queue-full burst fires once per episode and resolves when the window has passed', async () => {
    expect((await post(`${t.url}/api/generate`, { model: 'busy', prompt: '' })).status).toBe(200);
    // One slot, no queue: while a request holds the slot, others are refused. A request lasts a few
    // hundred ms on the tiny model, so of a concurrent burst at most one or two get through.
    const burst = async (): Promise<number> => {
      const ctrl = new AbortController();
      const long = await post(
        `${t.url}/api/generate`,
        { model: 'busy', prompt: 'hold the slot', options: { num_predict: 8000 } },
        { signal: ctrl.signal },
      );
      const reader = long.body!.getReader();
      await reader.read(); // the first token: the only slot is taken
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => post(`${t.url}/api/generate`, { model: 'busy', prompt: 'x', stream: false })),
      );
      ctrl.abort();
      await reader.cancel().catch(() => undefined);
      const refused = answers.filter((r) => r.status === 503);
      for (const r of refused) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answers.every((r) => r.status === 503 || r.status === 200)).toBe(true);
      return refused.length;
    };
    expect(await burst()).toBeGreaterThanOrEqual(4);
    const fired = await hooks.waitFor('/json', is('firing', 'queue_full', 'busy:latest'));
    expect(note(fired.body).summary).toMatch(/busy:latest: .*% of requests refused with 503/);
    // Another burst while it fires: still one notification.
    expect(await burst()).toBeGreaterThanOrEqual(4);
    await evaluations(3);
    expect(hooks.accepted('/json', is('firing', 'queue_full', 'busy:latest'))).toHaveLength(1);
    // A warning: the Slack hook only takes critical ones.
    expect(hooks.accepted('/slack', (b) => b.includes('queue_full'))).toHaveLength(0);
    await hooks.waitFor('/json', is('resolved', 'queue_full', 'busy:latest'), 15_000);
    expect(t.gw.app.alerts.firing().some((a) => a.rule === 'queue_full')).toBe(false);
  });

  it('an admin can send a test notification to every webhook from the Alerts page', async () => {
    const admin = await loginAs(t, 'admin');
    const res = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/alerts/test',
      headers: {
        cookie: admin.cookie,
        'x-csrf-token': admin.csrf,
        'hx-request': 'true',
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: `_csrf=${admin.csrf}`,
    });
    expect(res.body).toContain('Sent a test notification to 3 webhooks');
    const json = await hooks.waitFor('/json', (b) => note(b).rule === 'test');
    expect(note(json.body)).toMatchObject({ status: 'firing', severity: 'info' });
    expect(note(json.body).summary).toContain('sent by admin');
    // Sent to the Slack hook as well, although it takes only critical alerts.
    await hooks.waitFor('/slack', (b) => b.includes('[info] test'));
    await hooks.waitFor('/ntfy', (b) => b.includes('test notification'));
    expect((await t.gw.store.auditLog.recent({ action: 'alerts.test' }))[0]).toMatchObject({
      actor: 'admin',
      outcome: 'success',
    });
    const viewer = await loginAs(t, 'viewer');
    const refused = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/alerts/test',
      headers: { cookie: viewer.cookie, 'x-csrf-token': viewer.csrf },
    });
    expect(refused.statusCode).toBe(403);
  });
});
