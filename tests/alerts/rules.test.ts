import { EventEmitter, once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluateRules, type Observations } from '../../src/alerts/conditions.js';
import { AlertEngine } from '../../src/alerts/engine.js';
import { renderNotification } from '../../src/alerts/webhooks.js';
import { defaultConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import { openDatabase, type Store } from '../../src/store/database.js';
import { startReceiver, type Receiver } from './webhook-receiver.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
/** Per-model totals as the request log's aggregates give them. */
const totals = (key: string, requests: number, failed = 0, refused = 0) => ({
  key,
  requests,
  promptTokens: 0,
  completionTokens: 0,
  failed,
  refused,
});
const observe = (o: Partial<Observations>): Observations => ({
  now: NOW,
  totals: { error_rate: [], queue_full: [] },
  p95: { ttft_p95: new Map(), queue_wait_p95: new Map() },
  failures: new Map(),
  crashLoops: new Map(),
  memory: { usedBytes: 0, budgetBytes: 0 },
  disks: [],
  tokens: [],
  ...o,
});
const rules = defaultConfig().alerts.rules;

describe('alert rules', () => {
  it('error rate and queue-full share: above the percentage, per model, only with enough requests', () => {
    const hits = (o: Partial<Observations>) =>
      evaluateRules(rules, observe(o)).map((h) => [h.rule, h.subject, h.summary]);
    // a: 2 of 21 = 9.5% ≤ 10%; b: 100% but 5 requests (< 20).
    expect(hits({ totals: { error_rate: [totals('a', 21, 2), totals('b', 5, 5)], queue_full: [] } })).toEqual([]);
    expect(hits({ totals: { error_rate: [totals('a', 22, 3)], queue_full: [totals('a', 22, 0, 2)] } })).toEqual([
      ['error_rate', 'a', 'a: 13.6% of requests failed (3 of 22 in 5m)'],
      ['queue_full', 'a', 'a: 9.1% of requests refused with 503, queue full (2 of 22 in 5m)'],
    ]);
  });

  it('p95 time to first token and queue wait above their thresholds, with enough requests', () => {
    const hits = evaluateRules(
      rules,
      observe({
        p95: {
          ttft_p95: new Map([
            ['a', { count: 20, p95: 20_000 }],
            ['b', { count: 5, p95: 60_000 }],
          ]),
          queue_wait_p95: new Map([['a', { count: 20, p95: 6000 }]]),
        },
      }),
    );
    expect(hits.map((h) => [h.rule, h.summary])).toEqual([
      ['ttft_p95', 'a: p95 time to first token 20 s over 5m (above 10 s)'],
      ['queue_wait_p95', 'a: p95 queue wait 6 s over 5m (above 5 s)'],
    ]);
  });

  it('memory budget, free disk and token quotas', () => {
    const hits = evaluateRules(
      rules,
      observe({
        memory: { usedBytes: 95, budgetBytes: 100 },
        disks: [
          { path: '/data', freeBytes: 1e9 },
          { path: '/models', freeBytes: 50e9 },
        ],
        tokens: [
          { name: 'ci', used: 900, limit: 1000 },
          { name: 'bot', used: 100, limit: 1000 },
        ],
      }),
    );
    expect(hits.map((h) => [h.rule, h.subject, h.severity])).toEqual([
      ['memory_budget', '', 'warning'],
      ['disk_free', '/data', 'critical'],
      ['token_quota', 'token ci', 'info'],
    ]);
    // No budget (0 = unlimited) never fires.
    expect(evaluateRules(rules, observe({ memory: { usedBytes: 95, budgetBytes: 0 } }))).toEqual([]);
  });

  it('a disabled rule and its severity come from the config', () => {
    const config = parseConfig(
      'alerts: {rules: {disk_free: {enabled: false}, memory_budget: {severity: critical, percent: 50}}}',
      'c.yaml',
      {},
    );
    const hits = evaluateRules(
      config.alerts.rules,
      observe({ memory: { usedBytes: 60, budgetBytes: 100 }, disks: [{ path: '/d', freeBytes: 0 }] }),
    );
    expect(hits.map((h) => [h.rule, h.severity])).toEqual([['memory_budget', 'critical']]);
  });

  it('renders Slack text with its three characters escaped', () => {
    const episode = {
      id: 1,
      rule: 'model_failed',
      subject: 'a<b>',
      severity: 'warning' as const,
      summary: 'x & y',
      startedAt: NOW,
      resolvedAt: undefined,
      notified: true,
    };
    const slack = renderNotification('slack', { status: 'firing', episode }, 'host');
    expect(JSON.parse(slack.body)).toEqual({
      text: ':warning: *FIRING [warning] model_failed a&lt;b&gt;* on host\nx &amp; y',
    });
  });
});

describe('the alert engine', () => {
  let store: Store;
  let hooks: Receiver;
  let clock: number;
  let config: Config;
  let memory: number;
  let engine: AlertEngine;
  /** The engine's inputs the test controls: memory use against a budget of 100. */
  const scheduler = Object.assign(new EventEmitter(), {
    status: () => ({
      memoryBudgetBytes: 100,
      memoryUsedBytes: memory,
      maxLoadedModels: 0,
      loadedCount: 0,
      failures: [],
    }),
  }) as unknown as Scheduler;
  const logs: string[] = [];
  const log = {
    info: (_: object, m: string) => logs.push(m),
    warn: (_: object, m: string) => logs.push(m),
    error: () => {},
  };

  beforeEach(async () => {
    store = openDatabase(':memory:');
    hooks = await startReceiver();
    clock = NOW;
    memory = 0;
    config = parseConfig(
      `alerts: {webhooks: [{url: "${hooks.url}/json"}], rules: {memory_budget: {cooldown: 10m}, disk_free: {enabled: false}}}`,
      'c.yaml',
      {},
    );
    engine = new AlertEngine({ config: () => config, scheduler, store, dirs: () => [], log, now: () => clock });
  });
  afterEach(async () => {
    await engine.stop();
    await hooks.close();
    await store.close();
  });

  const step = async (used: number, minutes: number): Promise<void> => {
    memory = used;
    clock += minutes * 60_000;
    await engine.evaluate();
    await engine.delivered();
  };
  const statuses = () => hooks.accepted('/json').map((r) => (JSON.parse(r.body) as { status: string }).status);

  it('notifies once per episode, holds back a re-fire within the cooldown, and records every episode', async () => {
    await step(95, 0);
    await step(96, 1);
    expect(statuses()).toEqual(['firing']);
    await step(10, 1);
    expect(statuses()).toEqual(['firing', 'resolved']);
    // Fires again 2 minutes after it last notified: within the 10m cooldown, recorded but not sent.
    await step(97, 1);
    expect(engine.firing()).toMatchObject([{ rule: 'memory_budget', notified: false }]);
    await step(10, 1);
    expect(statuses()).toEqual(['firing', 'resolved']);
    // After the cooldown it is sent again.
    await step(98, 10);
    expect(statuses()).toEqual(['firing', 'resolved', 'firing']);
    expect((await store.alertHistory.recent()).map((e) => [e.notified, e.resolvedAt !== undefined])).toEqual([
      [true, false],
      [false, true],
      [true, true],
    ]);
  });

  it('an alert firing when Corral stopped is not announced again after a restart', async () => {
    await step(95, 0);
    await engine.stop();
    engine = new AlertEngine({ config: () => config, scheduler, store, dirs: () => [], log, now: () => clock });
    await engine.restore();
    expect(engine.firing()).toHaveLength(1);
    await step(95, 1);
    await step(10, 1);
    expect(statuses()).toEqual(['firing', 'resolved']);
  });

  it('evaluates on its interval once started', async () => {
    config = { ...config, alerts: { ...config.alerts, interval: '50ms' } };
    engine.start();
    await once(engine, 'evaluated');
    await once(engine, 'evaluated');
    expect(engine.observations()?.memory).toEqual({ usedBytes: 0, budgetBytes: 100 });
  });
});
