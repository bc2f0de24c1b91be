import type { RequestRecord } from './request-records.js';

export interface Series {
  label: string;
  /** CSS class that colours the line (and its legend swatch). */
  cls: string;
  /** SVG polyline points inside the plot area. */
  points: string;
}

export interface Tick {
  /** Position along the axis in SVG units. */
  at: number;
  label: string;
}

export interface Chart {
  title: string;
  /** What the y axis counts, e.g. "requests per minute". */
  yTitle: string;
  unit: string;
  series: Series[];
  yTicks: Tick[];
  xTicks: Tick[];
  plot: { left: number; right: number; top: number; bottom: number };
  width: number;
  height: number;
  /** The last minute's value and the hour's peak of the first series, formatted with the unit. */
  latest: string;
  peak: string;
}

const W = 360;
const H = 170;
const PLOT = { left: 46, right: W - 10, top: 10, bottom: H - 34 };

/** The smallest of 1, 2, 5 × 10^k that is ≥ v: axis maxima with round tick labels. */
export function niceCeiling(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v - 1e-9) return m * p;
  return 10 * p;
}

/** Records bucketed per minute over the last `minutes`, oldest first. */
function buckets(records: RequestRecord[], now: number, minutes: number): RequestRecord[][] {
  const out: RequestRecord[][] = Array.from({ length: minutes }, () => []);
  for (const r of records) {
    const age = Math.floor((now - r.at.getTime()) / 60_000);
    if (age >= 0 && age < minutes) out[minutes - 1 - age]!.push(r);
  }
  return out;
}

function mean(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
}

function fmt(v: number, digits: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k` : v.toFixed(digits);
}

/** One chart: a line per series on shared axes, y from 0 to a round maximum, x the last `minutes`. */
function draw(
  title: string,
  yTitle: string,
  unit: string,
  lines: { label: string; cls: string; values: number[] }[],
  digits = 0,
): Chart {
  const values = lines.flatMap((l) => l.values);
  const top = niceCeiling(Math.max(...values, 0));
  const minutes = lines[0]?.values.length ?? 60;
  const x = (i: number): number => PLOT.left + (i / Math.max(1, minutes - 1)) * (PLOT.right - PLOT.left);
  const y = (v: number): number => PLOT.bottom - (v / top) * (PLOT.bottom - PLOT.top);
  const series = lines.map((l) => ({
    label: l.label,
    cls: l.cls,
    points: l.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
  }));
  const yTicks = [0, top / 2, top].map((v) => ({ at: y(v), label: fmt(v, top < 10 ? 1 : 0) }));
  const xTicks = [60, 45, 30, 15, 0]
    .filter((ago) => ago < minutes || ago === 0)
    .map((ago) => ({ at: x(minutes - 1 - ago), label: ago === 0 ? 'now' : `−${ago} min` }));
  const first = lines[0]?.values ?? [];
  return {
    title,
    yTitle,
    unit,
    series,
    yTicks,
    xTicks,
    plot: PLOT,
    width: W,
    height: H,
    latest: `${fmt(first.at(-1) ?? 0, digits)} ${unit}`,
    peak: `${fmt(Math.max(...first, 0), digits)} ${unit}`,
  };
}

/** Requests (all, and those that did not succeed), generation speed and latency per minute over the last hour. */
export function activityCharts(records: RequestRecord[], now = Date.now(), minutes = 60): Chart[] {
  const b = buckets(records, now, minutes);
  const ok = (r: RequestRecord): boolean => r.outcome === 'ok';
  return [
    draw('Requests per minute', 'requests per minute', 'req/min', [
      { label: 'all requests', cls: 'series-all', values: b.map((rs) => rs.length) },
      { label: 'not successful', cls: 'series-bad', values: b.map((rs) => rs.filter((r) => !ok(r)).length) },
    ]),
    draw(
      'Generation speed',
      'tokens per second (mean)',
      'tokens/s',
      [
        {
          label: 'generated tokens/s',
          cls: 'series-all',
          values: b.map((rs) => mean(rs.map((r) => r.tokensPerSecond)) ?? 0),
        },
      ],
      1,
    ),
    draw('Latency', 'milliseconds (mean of successful requests)', 'ms', [
      {
        label: 'total time',
        cls: 'series-all',
        values: b.map((rs) => mean(rs.filter(ok).map((r) => r.durationMs)) ?? 0),
      },
      {
        label: 'time to first token',
        cls: 'series-alt',
        values: b.map((rs) => mean(rs.filter(ok).map((r) => r.ttftMs)) ?? 0),
      },
    ]),
  ];
}
