import type { Config } from '../config/schema.js';
import { parseDuration, parseSize } from '../config/duration.js';
import type { Severity } from '../store/alert-history.js';
import type { ModelTotals, Traffic } from './traffic.js';

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
  /** Per model, over each request rule's window: counts (failed = 5xx but 503, refused = 503) and p95s. */
  totals: Traffic['totals'];
  p95: Traffic['p95'];
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

type Hit = { subject: string; summary: string };

function shareRule(
  rows: ModelTotals[],
  rule: Rules['error_rate'],
  count: (t: ModelTotals) => number,
  describe: (model: string, share: string, n: number, total: number) => string,
): Hit[] {
  return rows
    .filter((t) => t.requests >= rule.min_requests && (count(t) / t.requests) * 100 > rule.percent)
    .map((t) => ({
      subject: t.key,
      summary: describe(t.key, pct((count(t) / t.requests) * 100), count(t), t.requests),
    }));
}

function p95Rule(stats: Map<string, { count: number; p95: number }>, rule: Rules['ttft_p95'], what: string): Hit[] {
  const limit = ms(rule.threshold);
  return [...stats]
    .filter(([, s]) => s.count >= rule.min_requests && s.p95 > limit)
    .map(([model, s]) => ({
      subject: model,
      summary: `${model}: p95 ${what} ${secs(s.p95)} over ${rule.window} (above ${secs(limit)})`,
    }));
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
        o.totals.error_rate,
        rules.error_rate,
        (t) => t.failed,
        (m, share, n, total) => `${m}: ${share} of requests failed (${n} of ${total} in ${rules.error_rate.window})`,
      ),
    ],
    [
      'queue_full',
      shareRule(
        o.totals.queue_full,
        rules.queue_full,
        (t) => t.refused,
        (m, share, n, total) =>
          `${m}: ${share} of requests refused with 503, queue full (${n} of ${total} in ${rules.queue_full.window})`,
      ),
    ],
    ['ttft_p95', p95Rule(o.p95.ttft_p95, rules.ttft_p95, 'time to first token')],
    ['queue_wait_p95', p95Rule(o.p95.queue_wait_p95, rules.queue_wait_p95, 'queue wait')],
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
