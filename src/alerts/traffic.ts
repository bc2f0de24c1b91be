import { parseDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { percentile } from '../reports/percentile.js';
import type { RequestSample } from '../store/request-log.js';

/** A model's requests over a rule's window: all of them, the 5xx but 503 (failed), the 503 (refused). */
export interface ModelTotals {
  key: string;
  requests: number;
  failed: number;
  refused: number;
}

export interface Traffic {
  totals: { error_rate: ModelTotals[]; queue_full: ModelTotals[] };
  /** p95 in ms and how many successful requests it was taken over, per model. */
  p95: {
    ttft_p95: Map<string, { count: number; p95: number }>;
    queue_wait_p95: Map<string, { count: number; p95: number }>;
  };
}

type Rules = Config['alerts']['rules'];
const TOTALS = ['error_rate', 'queue_full'] as const;
const P95 = { ttft_p95: 'ttft_ms', queue_wait_p95: 'queue_wait_ms' } as const;
type RequestRule = (typeof TOTALS)[number] | keyof typeof P95;
const REQUEST_RULES: RequestRule[] = [...TOTALS, 'ttft_p95', 'queue_wait_p95'];

/** Where each request rule's window starts. */
const windowStarts = (rules: Rules, now: number): Record<RequestRule, number> =>
  Object.fromEntries(REQUEST_RULES.map((r) => [r, now - parseDuration(rules[r].window)])) as Record<
    RequestRule,
    number
  >;

/** How far back the request rules look: the longest of their windows. */
export const trafficWindow = (rules: Rules): number =>
  Math.max(...REQUEST_RULES.map((r) => parseDuration(rules[r].window)));

/** What the request rules judge, from one pass over the request log of the longest window. */
export async function observeTraffic(
  pages: AsyncIterable<RequestSample[]>,
  rules: Rules,
  now: number,
): Promise<Traffic> {
  const since = windowStarts(rules, now);
  const totals = { error_rate: new Map<string, ModelTotals>(), queue_full: new Map<string, ModelTotals>() };
  const values = { ttft_p95: new Map<string, number[]>(), queue_wait_p95: new Map<string, number[]>() };
  for await (const page of pages) {
    for (const r of page) {
      const model = r.model ?? '';
      for (const rule of TOTALS) {
        if (r.at < since[rule]) continue;
        const t = totals[rule].get(model) ?? { key: model, requests: 0, failed: 0, refused: 0 };
        t.requests++;
        if (r.status === 503) t.refused++;
        else if (r.status >= 500) t.failed++;
        totals[rule].set(model, t);
      }
      if (r.status >= 300) continue;
      for (const [rule, column] of Object.entries(P95) as [keyof typeof P95, 'ttft_ms' | 'queue_wait_ms'][]) {
        const v = r[column];
        if (r.at < since[rule] || v === null) continue;
        const list = values[rule].get(model) ?? [];
        list.push(v);
        values[rule].set(model, list);
      }
    }
  }
  const p95 = (m: Map<string, number[]>) =>
    new Map([...m].map(([model, vs]) => [model, { count: vs.length, p95: percentile(vs, 95)! }]));
  return {
    totals: { error_rate: [...totals.error_rate.values()], queue_full: [...totals.queue_full.values()] },
    p95: { ttft_p95: p95(values.ttft_p95), queue_wait_p95: p95(values.queue_wait_p95) },
  };
}
