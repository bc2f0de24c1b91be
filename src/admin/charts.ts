import type { RequestRecord } from './request-records.js';

export interface Chart {
  title: string;
  unit: string;
  /** SVG polyline points in a 0..W × 0..H box. */
  points: string;
  max: string;
  latest: string;
  width: number;
  height: number;
}

const W = 300;
const H = 80;

/** Buckets records per minute over the last `minutes` and draws one series as an inline SVG polyline. */
function series(
  records: RequestRecord[],
  now: number,
  minutes: number,
  pick: (rs: RequestRecord[]) => number | undefined,
): number[] {
  const buckets: RequestRecord[][] = Array.from({ length: minutes }, () => []);
  for (const r of records) {
    const age = Math.floor((now - r.at.getTime()) / 60_000);
    if (age >= 0 && age < minutes) buckets[minutes - 1 - age]!.push(r);
  }
  return buckets.map((b) => pick(b) ?? 0);
}

function mean(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
}

function draw(title: string, unit: string, values: number[], digits = 0): Chart {
  const max = Math.max(...values, 0);
  const step = values.length > 1 ? W / (values.length - 1) : W;
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(H - (max ? (v / max) * (H - 4) : 0) - 2).toFixed(1)}`)
    .join(' ');
  return {
    title,
    unit,
    points,
    max: max.toFixed(digits),
    latest: (values.at(-1) ?? 0).toFixed(digits),
    width: W,
    height: H,
  };
}

export function activityCharts(records: RequestRecord[], now = Date.now(), minutes = 60): Chart[] {
  return [
    draw(
      'Requests per minute',
      'req',
      series(records, now, minutes, (b) => b.length),
    ),
    draw(
      'Generation speed',
      'tokens/s',
      series(records, now, minutes, (b) => mean(b.map((r) => r.tokensPerSecond))),
      1,
    ),
    draw(
      'Mean latency',
      'ms',
      series(records, now, minutes, (b) => mean(b.map((r) => r.durationMs))),
    ),
  ];
}
