import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { reportCommand } from '../../src/commands/report.js';
import type { UsageReport } from '../../src/reports/usage.js';
import { loginAs } from '../admin/helpers.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';

const fixtures = inject('fixtures');
const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;

describe('usage and latency reports', () => {
  let t: TestGateway;
  let db: string;

  /** Runs `corral report` in-process and returns its exit code and output. */
  const report = async (...args: string[]): Promise<{ code: number; out: string }> => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    const code = await reportCommand([...args, '--db', db], io);
    return { code, out: lines.join('\n') };
  };

  beforeAll(async () => {
    t = await startGateway({
      models: { tiny: { path: fixtures.models.chat }, other: { path: fixtures.models.chat2 } },
    });
    db = resolve(t.dir, 'data', 'corral.db');
    const ask = async (model: string): Promise<void> => {
      const res = await post(`${t.url}/api/generate`, { model, prompt: 'count', options: { num_predict: 12 } });
      expect(res.status).toBe(200);
      await res.text();
    };
    for (let i = 0; i < 6; i++) await ask('tiny');
    for (let i = 0; i < 5; i++) await ask('other');
    await t.gw.store.flush();
  });
  afterAll(() => t?.close());

  it('prints a table per model from the request log, read-only beside the running gateway', async () => {
    const logged = await t.gw.store.requestLog.recent({ model: 'tiny:latest' });
    expect(logged).toHaveLength(6);
    const { code, out } = await report('--since', '1h');
    expect(code).toBe(0);
    const lines = out.split('\n');
    const header = lines.find((l) => l.startsWith('model '))!;
    expect(header.split(/\s{2,}/)).toEqual([
      'model',
      'requests',
      'prompt tokens',
      'completion tokens',
      'errors',
      'ttft p50 ms',
      'ttft p95 ms',
      'tokens/s p50',
      'tokens/s p95',
    ]);
    const tiny = lines.find((l) => l.startsWith('tiny:latest'))!.split(/\s+/);
    expect(tiny.slice(0, 4)).toEqual([
      'tiny:latest',
      '6',
      String(logged.reduce((n, r) => n + (r.prompt_tokens ?? 0), 0)),
      String(6 * 12),
    ]);
    expect(lines.find((l) => l.startsWith('other:latest'))!.split(/\s+/)[1]).toBe('5');
    expect(lines.find((l) => l.startsWith('total'))!.split(/\s+/)[1]).toBe('11');
  });

  it('--json is what --compare reads; a seeded regression is flagged and exits 1', async () => {
    const json = await report('--since', '1h', '--json');
    const now = JSON.parse(json.out) as UsageReport;
    const tiny = now.rows.find((r) => r.key === 'tiny:latest')!;
    expect(tiny.ttftP95).toBeGreaterThan(0);
    expect(tiny.tpsP50).toBeGreaterThan(0);

    const same = join(t.dir, 'same.json');
    await writeFile(same, json.out);
    const unchanged = await report('--since', '1h', '--compare', same);
    expect(unchanged.code).toBe(0);
    expect(unchanged.out).toMatch(/^ok +tiny:latest: ttft p95 /m);
    expect(unchanged.out).toContain('no regression beyond 10%');

    // The earlier run was twice as fast for tiny: its first tokens came sooner and more tokens/s.
    const earlier = structuredClone(now);
    const seeded = earlier.rows.find((r) => r.key === 'tiny:latest')!;
    seeded.ttftP95 = tiny.ttftP95! / 2;
    seeded.tpsP50 = tiny.tpsP50! * 2;
    const file = join(t.dir, 'earlier.json');
    await writeFile(file, JSON.stringify(earlier));
    const compared = await report('--since', '1h', '--compare', file);
    expect(compared.code).toBe(1);
    expect(compared.out).toMatch(
      /^REGRESSION +tiny:latest: ttft p95 .*\(100% worse\); tokens\/s p50 .*\(50% worse\)$/m,
    );
    expect(compared.out).toMatch(/^ok +other:latest:/m);
    expect(compared.out).toContain('1 regression beyond 10%');
    // A threshold above the change, or too few requests to judge, flags nothing.
    expect((await report('--since', '1h', '--compare', file, '--threshold', '150')).code).toBe(0);
    const few = await report('--since', '1h', '--compare', file, '--min-requests', '10');
    expect(few.code).toBe(0);
    expect(few.out).toMatch(/^skipped +tiny:latest: fewer than 10 requests \(6 earlier, 6 now\)$/m);
  });

  it('refuses a file that is not a report, and bad arguments', async () => {
    const bogus = join(t.dir, 'bogus.json');
    await writeFile(bogus, '{"rows": []}');
    await expect(report('--compare', bogus)).rejects.toThrow(/not the output of `corral report --json`/);
    expect((await report('--since', 'last week')).code).toBe(2);
    expect((await report('--by', 'colour')).code).toBe(2);
  });

  it('runs as `corral report` from the built CLI', async () => {
    expect(existsSync(CLI), 'npm test builds dist/ first').toBe(true);
    const run = await execa('node', [CLI, 'report', '--since', '1h', '--by', 'token', '--db', db], { reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^loopback +11 /m);
  });

  it('shows the same numbers on /admin/usage, per model and per token, with CSV export', async () => {
    const s = await loginAs(t, 'viewer');
    const page = await t.gw.app.inject({ url: '/admin/usage?range=1h', headers: { cookie: s.cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<th scope="row">tiny:latest<\/th><td class="num">6<\/td>/);
    const csv = await t.gw.app.inject({ url: '/admin/usage.csv?range=1h&by=token', headers: { cookie: s.cookie } });
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="corral-usage-by-token-/);
    const rows = csv.body.trimEnd().split('\r\n');
    expect(rows[0]).toBe(
      '"token","requests","prompt tokens","completion tokens","errors","ttft p50 ms","ttft p95 ms","tokens/s p50","tokens/s p95"',
    );
    expect(rows[1]).toMatch(/^"loopback","11",/);
    const activity = await t.gw.app.inject({ url: '/admin/activity', headers: { cookie: s.cookie } });
    expect(activity.body).toContain('href="/admin/usage"');
    const bad = await t.gw.app.inject({ url: '/admin/usage?from=yesterday', headers: { cookie: s.cookie } });
    expect(bad.statusCode).toBe(400);
  });
});
