import type { UsageReport, UsageRow } from './usage.js';

export interface Comparison {
  key: string;
  /** p95 time to first token, earlier and now (ms). */
  ttftP95: [number | null, number | null];
  /** Median generation speed, earlier and now (tokens/s). */
  tpsP50: [number | null, number | null];
  /** Relative change in percent; positive = worse (slower first token, fewer tokens/s). */
  ttftWorsePct: number | null;
  tpsWorsePct: number | null;
  regressed: boolean;
  /** Why a row was not judged (too few requests on either side). */
  skipped?: string | undefined;
}

const worse = (before: number | null, after: number | null, lowerIsBetter: boolean): number | null => {
  if (before === null || after === null || before <= 0) return null;
  const change = ((after - before) / before) * 100;
  return Math.round((lowerIsBetter ? change : -change) * 10) / 10;
};

/**
 * Each row of `now` against the same key in `earlier`: a regression is a p95 time to first token
 * that grew, or a median tokens/s that fell, by more than `thresholdPct`.
 */
export function compareReports(
  earlier: UsageReport,
  now: UsageReport,
  opts: { thresholdPct: number; minRequests: number },
): Comparison[] {
  const before = new Map(earlier.rows.map((r) => [r.key, r]));
  const few = (x: UsageRow): boolean => x.requests < opts.minRequests;
  return now.rows.flatMap((r): Comparison[] => {
    const e = before.get(r.key);
    if (!e) return [];
    const c: Comparison = {
      key: r.key,
      ttftP95: [e.ttftP95, r.ttftP95],
      tpsP50: [e.tpsP50, r.tpsP50],
      ttftWorsePct: null,
      tpsWorsePct: null,
      regressed: false,
    };
    if (few(e) || few(r)) {
      c.skipped = `fewer than ${opts.minRequests} requests (${e.requests} earlier, ${r.requests} now)`;
      return [c];
    }
    c.ttftWorsePct = worse(e.ttftP95, r.ttftP95, true);
    c.tpsWorsePct = worse(e.tpsP50, r.tpsP50, false);
    c.regressed = [c.ttftWorsePct, c.tpsWorsePct].some((p) => p !== null && p > opts.thresholdPct);
    return [c];
  });
}

const num = (v: number | null): string => (v === null ? '—' : String(v));
const pct = (v: number | null): string => (v === null ? '' : v > 0 ? ` (${v}% worse)` : ` (${-v}% better)`);

/** The comparison as lines for a terminal. */
export function comparisonText(rows: Comparison[], thresholdPct: number): string {
  if (rows.length === 0) return 'No model appears in both reports.';
  const lines = rows.map((c) => {
    const flag = c.regressed ? 'REGRESSION' : c.skipped ? 'skipped' : 'ok';
    const detail = c.skipped
      ? c.skipped
      : `ttft p95 ${num(c.ttftP95[0])} → ${num(c.ttftP95[1])} ms${pct(c.ttftWorsePct)}; ` +
        `tokens/s p50 ${num(c.tpsP50[0])} → ${num(c.tpsP50[1])}${pct(c.tpsWorsePct)}`;
    return `${flag.padEnd(10)}  ${c.key}: ${detail}`;
  });
  const n = rows.filter((c) => c.regressed).length;
  return [
    ...lines,
    n ? `${n} regression${n === 1 ? '' : 's'} beyond ${thresholdPct}%` : `no regression beyond ${thresholdPct}%`,
  ].join('\n');
}
