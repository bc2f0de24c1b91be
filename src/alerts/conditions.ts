import type { Config } from '../config/schema.js';
import { parseDuration, parseSize } from '../config/duration.js';
import type { Severity } from '../store/alert-history.js';
import type { RequestSample } from '../store/request-log.js';
import { percentile } from './percentile.js';

export type RuleName = keyof Config['alerts']['rules'];

/** One alert whose condition holds now. */
export interface Active {
  rule: RuleName;
  /** A model, a token, a directory; "" for Corral as a whole. */
  subject: string;
  severity: Severity;
  summary: string;
}

/** What the rules judge, gathered once per evaluation. */
export interface Observations {
  now: number;
  /** Requests that named a model, over the longest window of the request rules. */
  requests: RequestSample[];
  /** Per model: the last failure not followed by a good load. */
  failures: Map<string, { at: number; reason: string }>;
  /** Per model: the crash loop the scheduler gave up on, while no good load followed. */
  crashLoops: Map<string, { consecutive: number; reason: string }>;
  memory: { usedBytes: number; budgetBytes: number };
  /** Free bytes per directory (one per filesystem). */
  disks: { path: string; freeBytes: number }[];
  tokens: { name: string; used: number; limit: number }[];
}

type Rules = Config['alerts']['rules'];
const ms = (d: string | number): number => parseDuration(d);
const pct = (n: number): string => `${Math.round(n * 10) / 10}%`;
const secs = (millis: number): string => `${Number((millis / 1000).toFixed(2))} s`;
const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

/** The requests of the last `window` grouped by model. */
function byModel(requests: RequestSample[], since: number): Map<string, RequestSample[]> {
  const out = new Map<string, RequestSample[]>();
  for (const r of requests) {
    if (r.at < since || !r.model) continue;
    let list = out.get(r.model);
    if (!list) out.set(r.model, (list = []));
    list.push(r);
  }
  return out;
}

function shareRule(
  o: Observations,
  rule: Rules['error_rate'],
  matches: (status: number) => boolean,
  describe: (model: string, share: string, n: number, total: number, window: string) => string,
): { subject: string; summary: string }[] {
  const out: { subject: string; summary: string }[] = [];
  for (const [model, rows] of byModel(o.requests, o.now - ms(rule.window))) {
    if (rows.length < rule.min_requests) continue;
    const n = rows.filter((r) => matches(r.status)).length;
    const share = (n / rows.length) * 100;
    if (share > rule.percent)
      out.push({ subject: model, summary: describe(model, pct(share), n, rows.length, String(rule.window)) });
  }
  return out;
}

function p95Rule(
  o: Observations,
  rule: Rules['ttft_p95'],
  pick: (r: RequestSample) => number | null,
  what: string,
): { subject: string; summary: string }[] {
  const out: { subject: string; summary: string }[] = [];
  const limit = ms(rule.threshold);
  for (const [model, rows] of byModel(o.requests, o.now - ms(rule.window))) {
    const values = rows.map(pick).filter((v): v is number => v !== null);
    if (values.length < rule.min_requests) continue;
    const p95 = percentile(values, 0.95)!;
    if (p95 > limit)
      out.push({
        subject: model,
        summary: `${model}: p95 ${what} ${secs(p95)} over ${rule.window} (above ${secs(limit)})`,
      });
  }
  return out;
}

/** Each rule's firing subjects under `rules`, from one set of observations. */
export function evaluateRules(rules: Rules, o: Observations): Active[] {
  const found: [RuleName, { subject: string; summary: string }[]][] = [
    [
      'model_failed',
      [...o.failures]
        .filter(([, f]) => o.now - f.at < ms(rules.model_failed.window))
        .map(([model, f]) => ({ subject: model, summary: `${model} failed: ${f.reason}` })),
    ],
    [
      'model_crash_loop',
      [...o.crashLoops].map(([model, c]) => ({
        subject: model,
        summary: `${model} is crash-looping (${c.consecutive} failures in a row) and is not restarted: ${c.reason}`,
      })),
    ],
    [
      'error_rate',
      shareRule(
        o,
        rules.error_rate,
        (s) => s >= 500 && s !== 503,
        (m, share, n, total, w) => `${m}: ${share} of requests failed (${n} of ${total} in ${w})`,
      ),
    ],
    [
      'queue_full',
      shareRule(
        o,
        rules.queue_full,
        (s) => s === 503,
        (m, share, n, total, w) => `${m}: ${share} of requests refused with 503, queue full (${n} of ${total} in ${w})`,
      ),
    ],
    ['ttft_p95', p95Rule(o, rules.ttft_p95, (r) => r.ttft_ms, 'time to first token')],
    ['queue_wait_p95', p95Rule(o, rules.queue_wait_p95, (r) => r.queue_wait_ms, 'queue wait')],
    ['memory_budget', memoryRule(rules.memory_budget, o)],
    [
      'disk_free',
      o.disks
        .filter((d) => d.freeBytes < parseSize(rules.disk_free.min_free))
        .map((d) => ({ subject: d.path, summary: `${d.path}: only ${gib(d.freeBytes)} free` })),
    ],
    [
      'token_quota',
      o.tokens
        .filter((t) => (t.used / t.limit) * 100 > rules.token_quota.percent)
        .map((t) => ({
          subject: `token ${t.name}`,
          summary: `token "${t.name}" used ${pct((t.used / t.limit) * 100)} of its ${t.limit} tokens today`,
        })),
    ],
  ];
  return found.flatMap(([rule, hits]) =>
    rules[rule].enabled ? hits.map((h) => ({ rule, severity: rules[rule].severity as Severity, ...h })) : [],
  );
}

function memoryRule(rule: Rules['memory_budget'], o: Observations): { subject: string; summary: string }[] {
  const { usedBytes, budgetBytes } = o.memory;
  if (budgetBytes <= 0) return [];
  const share = (usedBytes / budgetBytes) * 100;
  if (share <= rule.percent) return [];
  return [
    {
      subject: '',
      summary: `loaded models use ${pct(share)} of the memory budget (${gib(usedBytes)} of ${gib(budgetBytes)})`,
    },
  ];
}

/** The longest window any request rule looks at: how far back an evaluation reads the request log. */
export function longestWindow(rules: Rules): number {
  return Math.max(
    ...[rules.error_rate, rules.queue_full, rules.ttft_p95, rules.queue_wait_p95].map((r) => ms(r.window)),
  );
}
