import type { RequestSample } from '../store/request-log.js';
import { percentile } from './percentile.js';

export type GroupBy = 'model' | 'token';

/** One line of the usage and latency table: a model, or whoever asked (token, user or "loopback"). */
export interface UsageRow {
  key: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Answers with a status of 400 or more, by status. */
  errors: Record<string, number>;
  /** Milliseconds, over successful requests that streamed a first token. */
  ttftP50: number | null;
  ttftP95: number | null;
  /** Generation speed in tokens/s, over successful requests that generated more than one token. */
  tpsP50: number | null;
  tpsP95: number | null;
}

export interface UsageReport {
  /** Marks the JSON form of a report, so `--compare` can tell it from other files. */
  kind: 'corral-usage-report';
  by: GroupBy;
  since: string;
  until: string;
  rows: UsageRow[];
  total: UsageRow;
}

/** Tokens per second of one request's generation after its first token (one token has no speed). */
export function tokensPerSecond(r: Pick<RequestSample, 'eval_tokens' | 'ttft_ms' | 'total_ms'>): number | undefined {
  if (!r.eval_tokens || r.eval_tokens < 2 || r.ttft_ms === null || r.total_ms === null) return undefined;
  const ms = r.total_ms - r.ttft_ms;
  return ms > 0 ? (r.eval_tokens * 1000) / ms : undefined;
}

interface Acc {
  row: UsageRow;
  ttft: number[];
  tps: number[];
}

const emptyRow = (key: string): UsageRow => ({
  key,
  requests: 0,
  promptTokens: 0,
  completionTokens: 0,
  errors: {},
  ttftP50: null,
  ttftP95: null,
  tpsP50: null,
  tpsP95: null,
});

function add(acc: Acc, r: RequestSample): void {
  const row = acc.row;
  row.requests++;
  row.promptTokens += r.prompt_tokens ?? 0;
  row.completionTokens += r.eval_tokens ?? 0;
  if (r.status >= 400) row.errors[r.status] = (row.errors[r.status] ?? 0) + 1;
  if (r.status >= 300) return;
  if (r.ttft_ms !== null) acc.ttft.push(r.ttft_ms);
  const tps = tokensPerSecond(r);
  if (tps !== undefined) acc.tps.push(tps);
}

const round = (v: number | undefined): number | null => (v === undefined ? null : Math.round(v * 10) / 10);

function finish(acc: Acc): UsageRow {
  return {
    ...acc.row,
    ttftP50: round(percentile(acc.ttft, 50)),
    ttftP95: round(percentile(acc.ttft, 95)),
    tpsP50: round(percentile(acc.tps, 50)),
    tpsP95: round(percentile(acc.tps, 95)),
  };
}

/** Usage of [since, until) by model or by who asked, from the request log's pages; rows sorted by requests. */
export async function buildUsageReport(
  pages: AsyncIterable<RequestSample[]>,
  opts: { by: GroupBy; since: number; until: number },
): Promise<UsageReport> {
  const groups = new Map<string, Acc>();
  const total: Acc = { row: emptyRow('total'), ttft: [], tps: [] };
  for await (const page of pages) {
    for (const r of page) {
      const key = (opts.by === 'model' ? r.model : r.principal) ?? '—';
      let acc = groups.get(key);
      if (!acc) groups.set(key, (acc = { row: emptyRow(key), ttft: [], tps: [] }));
      add(acc, r);
      add(total, r);
    }
  }
  return {
    kind: 'corral-usage-report',
    by: opts.by,
    since: new Date(opts.since).toISOString(),
    until: new Date(opts.until).toISOString(),
    rows: [...groups.values()].map(finish).sort((a, b) => b.requests - a.requests || a.key.localeCompare(b.key)),
    total: finish(total),
  };
}

/** "503×4 500×1", most frequent first. */
export const errorsText = (errors: Record<string, number>): string =>
  Object.entries(errors)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([status, n]) => `${status}×${n}`)
    .join(' ');

export const COLUMNS = [
  'requests',
  'prompt tokens',
  'completion tokens',
  'errors',
  'ttft p50 ms',
  'ttft p95 ms',
  'tokens/s p50',
  'tokens/s p95',
] as const;

/** A row's cells in COLUMNS order, as text ("" for a value nobody measured). */
export function cells(r: UsageRow): string[] {
  const n = (v: number | null): string => (v === null ? '' : String(v));
  return [
    String(r.requests),
    String(r.promptTokens),
    String(r.completionTokens),
    errorsText(r.errors),
    n(r.ttftP50),
    n(r.ttftP95),
    n(r.tpsP50),
    n(r.tpsP95),
  ];
}

/**
 * RFC 4180: every field quoted, quotes doubled; one header line. A name starting like a formula
 * (a token called "=HYPERLINK(…)") gets a leading apostrophe so a spreadsheet shows it as text.
 */
export function usageCsv(report: UsageReport): string {
  const q = (s: string): string => `"${(/^[=+\-@\t\r]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
  const lines = [
    [report.by, ...COLUMNS],
    ...report.rows.map((r) => [r.key, ...cells(r)]),
    ['total', ...cells(report.total)],
  ];
  return `${lines.map((l) => l.map(q).join(',')).join('\r\n')}\r\n`;
}

/** A fixed-width table for a terminal: names left-aligned, numbers right-aligned. */
export function usageTable(report: UsageReport): string {
  const head = [report.by, ...COLUMNS];
  const body = [...report.rows.map((r) => [r.key, ...cells(r)]), ['total', ...cells(report.total)]];
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]): string =>
    row
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
