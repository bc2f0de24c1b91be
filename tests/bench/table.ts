import type { Column } from './scenarios.js';

const TARGETS = ['direct', 'proxy', 'router', 'corral_ollama', 'corral_v1'] as const;
/** Rows in print order; `higher` marks rows where bigger is better (for reading ratios). */
const ROWS: { key: string; label: string; higher?: boolean }[] = [
  { key: 'ttft_p50_ms', label: 'TTFT p50 (ms)' },
  { key: 'ttft_p95_ms', label: 'TTFT p95 (ms)' },
  { key: 'nonstream_p50_ms', label: 'non-stream 4 tok p50 (ms)' },
  { key: 'nonstream_p95_ms', label: 'non-stream 4 tok p95 (ms)' },
  { key: 'stream_tok_s', label: 'stream throughput (tok/s)', higher: true },
  { key: 't1_ttft_p50_ms', label: 'spare core: TTFT p50 (ms)' },
  { key: 't1_nonstream_p50_ms', label: 'spare core: non-stream p50 (ms)' },
  { key: 't1_stream_tok_s', label: 'spare core: throughput (tok/s)', higher: true },
  { key: 'listen_ms', label: 'process start to listening (ms)' },
  { key: 'listen_spread_ms', label: 'start to listening, spread (ms)' },
  { key: 'child_ready_ms', label: 'child spawn-to-ready (ms)' },
  { key: 'cold_total_ms', label: 'cold first answer (ms)' },
  { key: 'cold_minus_ready_ms', label: 'cold minus child ready (ms)' },
  { key: 'cold_overhead_ms', label: 'cold minus direct cold (ms)' },
  { key: 'swap_ms', label: 'swap to other model (ms)' },
  ...[1, 8, 64, 200].flatMap((c) => [
    { key: `c${c}_tok_s`, label: `${c} streams: tok/s`, higher: true },
    { key: `c${c}_ttft_p95_ms`, label: `${c} streams: TTFT p95 (ms)` },
    { key: `c${c}_errors`, label: `${c} streams: errors` },
  ]),
  { key: 'tags_rps', label: 'list models (req/s)', higher: true },
  { key: 'ps_rps', label: 'running models (req/s)', higher: true },
  { key: 'rss_recent_mb', label: 'gateway RSS 0.5 s after a request (MB)' },
  { key: 'rss_idle_mb', label: 'gateway RSS idle, 20 s (MB)' },
  { key: 'rss_load_mb', label: 'gateway RSS 200 streams (MB)' },
];

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * Absolute figures per target, then each Corral column's ratio to direct llama-server (router when
 * direct has none). `node proxy` is the bare proxy of bare-proxy.ts, the floor for any gateway process.
 */
export function printTable(cols: Record<string, Column>, backend?: string): void {
  if (backend) process.stdout.write(`llama-server on ${backend}\n\n`);
  const header = ['', 'direct', 'node proxy', 'router', 'corral /api', 'corral /v1', '/api÷base', '/v1÷base'];
  const lines: string[][] = [header];
  for (const row of ROWS) {
    const vals = TARGETS.map((t) => cols[t]?.[row.key]);
    if (vals.every((v) => v === undefined)) continue;
    const base = vals[0] ?? vals[2];
    const ratio = (v: number | undefined): string =>
      v === undefined || base === undefined || base === 0 || Number.isNaN(base) ? '-' : `${(v / base).toFixed(2)}x`;
    lines.push([row.label, ...vals.map(fmt), ratio(vals[3]), ratio(vals[4])]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const render = (l: string[]): string =>
    `| ${l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  process.stdout.write(
    `${render(lines[0]!)}\n|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|\n`,
  );
  for (const l of lines.slice(1)) process.stdout.write(`${render(l)}\n`);
}
