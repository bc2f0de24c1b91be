import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { observeTraffic } from '../../src/alerts/traffic.js';
import { defaultConfig } from '../../src/config/load.js';
import { buildUsageReport, tokensPerSecond, usageCsv } from '../../src/reports/usage.js';
import { openDatabase, type SqliteStore } from '../../src/store/database.js';
import { sqliteClient } from '../../src/store/sqlite/client.js';
import { requestPages, type RequestLogEntry } from '../../src/store/request-log.js';

/** Nearest rank: the value at rank ceil(p/100 · n) of the sorted values. */
const nearestRank = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
};
const round = (v: number): number => Math.round(v * 10) / 10;

type Entry = RequestLogEntry & { at: number; model: string | null };

describe('reading and aggregating the request log', () => {
  let store: SqliteStore;
  const entries: Entry[] = [];
  beforeEach(async () => {
    store = openDatabase(':memory:');
    entries.length = 0;
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 1500; i++) {
      const status = rand() < 0.1 ? 503 : rand() < 0.05 ? 500 : 200;
      const ttft = status === 200 ? Math.round(rand() * 1000) : null;
      entries.push({
        // Logged when they finish: `at` (the start) is not in insertion order.
        at: 10_000 + i - Math.floor(rand() * 30),
        principal: rand() < 0.5 ? 'alice' : 'ci',
        // Requests that named no model (404s for unknown names) are not usage.
        model: i % 100 === 0 ? null : rand() < 0.6 ? 'a:latest' : 'b:latest',
        endpoint: '/api/chat',
        status,
        promptTokens: 10,
        evalTokens: status === 200 ? 1 + Math.floor(rand() * 50) : null,
        ttftMs: ttft,
        totalMs: ttft === null ? 5 : ttft + 100 + Math.round(rand() * 900),
        queueWaitMs: status === 200 ? Math.round(rand() * 50) : null,
      });
    }
    for (const e of entries) store.requestLog.write(e);
    await store.flush();
  });
  afterEach(() => store.close());

  const within = (since: number, until: number) => entries.filter((e) => e.model && e.at >= since && e.at < until);

  it('pages through exactly the period, across page boundaries and out-of-order times', async () => {
    const seen: number[] = [];
    let pages = 0;
    for await (const page of requestPages(sqliteClient(store.db), 10_300, 11_100, 128)) {
      pages++;
      seen.push(...page.map((r) => r.at));
    }
    expect(pages).toBeGreaterThan(5);
    expect(seen.sort((a, b) => a - b)).toEqual(
      within(10_300, 11_100)
        .map((e) => e.at)
        .sort((a, b) => a - b),
    );
    const none = [];
    for await (const page of requestPages(sqliteClient(store.db), 50_000, 60_000)) none.push(page);
    expect(none).toEqual([]);
  });

  it('reports counts, tokens, errors by status and nearest-rank percentiles per model and in total', async () => {
    const r = await buildUsageReport(store.requestLog.pages(10_200, 11_200), {
      by: 'model',
      since: 10_200,
      until: 11_200,
    });
    const rows = within(10_200, 11_200);
    expect(r.rows.map((x) => x.key).sort()).toEqual(['a:latest', 'b:latest']);
    for (const row of [...r.rows, r.total]) {
      const mine = row.key === 'total' ? rows : rows.filter((e) => e.model === row.key);
      const ok = mine.filter((e) => e.status === 200);
      const speeds = ok
        .map((e) => tokensPerSecond({ eval_tokens: e.evalTokens!, ttft_ms: e.ttftMs!, total_ms: e.totalMs! }))
        .filter((v): v is number => v !== undefined);
      expect(row).toEqual({
        key: row.key,
        requests: mine.length,
        promptTokens: 10 * mine.length,
        completionTokens: mine.reduce((n, e) => n + (e.evalTokens ?? 0), 0),
        errors: Object.fromEntries(
          [500, 503].map((s) => [String(s), mine.filter((e) => e.status === s).length]).filter(([, n]) => n),
        ),
        ttftP50: round(
          nearestRank(
            ok.map((e) => e.ttftMs!),
            50,
          ),
        ),
        ttftP95: round(
          nearestRank(
            ok.map((e) => e.ttftMs!),
            95,
          ),
        ),
        tpsP50: round(nearestRank(speeds, 50)),
        tpsP95: round(nearestRank(speeds, 95)),
      });
    }
    const byWho = await buildUsageReport(store.requestLog.pages(0, 99_999), { by: 'token', since: 0, until: 99_999 });
    expect(byWho.rows.map((x) => [x.key, x.requests])).toEqual(
      ['alice', 'ci']
        .map((p) => [p, within(0, 99_999).filter((e) => e.principal === p).length] as const)
        .sort((a, b) => b[1] - a[1]),
    );
  });

  it('gives the alert rules per-model counts and p95s over their own windows', async () => {
    const rules = structuredClone(defaultConfig().alerts.rules);
    rules.error_rate.window = '0.5s';
    const now = 11_500;
    const t = await observeTraffic(store.requestLog.pages(0, now + 1), rules, now);
    const a = t.totals.error_rate.find((x) => x.key === 'a:latest')!;
    const recent = within(now - 500, now + 1).filter((e) => e.model === 'a:latest');
    expect(a).toEqual({
      key: 'a:latest',
      requests: recent.length,
      failed: recent.filter((e) => e.status === 500).length,
      refused: recent.filter((e) => e.status === 503).length,
    });
    const ok = within(now - 300_000, now + 1).filter((e) => e.model === 'b:latest' && e.status === 200);
    expect(t.p95.ttft_p95.get('b:latest')).toEqual({
      count: ok.length,
      p95: nearestRank(
        ok.map((e) => e.ttftMs!),
        95,
      ),
    });
  });
});

describe('CSV export', () => {
  it('quotes every field and defuses names that a spreadsheet would run as formulas', () => {
    const row = (key: string) => ({
      key,
      requests: 1,
      promptTokens: 2,
      completionTokens: 3,
      errors: { 503: 1 },
      ttftP50: 1.5,
      ttftP95: null,
      tpsP50: null,
      tpsP95: null,
    });
    const csv = usageCsv({
      kind: 'corral-usage-report',
      by: 'token',
      since: '',
      until: '',
      rows: [row('=HYPERLINK("x")'), row('say "hi"')],
      total: row('total'),
    });
    expect(csv.split('\r\n')).toEqual([
      '"token","requests","prompt tokens","completion tokens","errors","ttft p50 ms","ttft p95 ms","tokens/s p50","tokens/s p95"',
      `"'=HYPERLINK(""x"")","1","2","3","503×1","1.5","","",""`,
      '"say ""hi""","1","2","3","503×1","1.5","","",""',
      '"total","1","2","3","503×1","1.5","","",""',
      '',
    ]);
  });
});
