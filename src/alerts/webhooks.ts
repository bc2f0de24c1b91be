import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import type { AlertEpisode, Severity } from '../store/alert-history.js';

export type Webhook = Config['alerts']['webhooks'][number];
export type Status = 'firing' | 'resolved';

export interface Notification {
  status: Status;
  episode: AlertEpisode;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };
export const severityAtLeast = (s: Severity, min: Severity): boolean => RANK[s] >= RANK[min];

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Slack's message text escapes exactly these three characters. */
const slackEscape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** HTTP header values are ASCII without line breaks. */
const headerSafe = (text: string): string => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 250);

const NTFY_PRIORITY: Record<Severity, string> = { info: '3', warning: '4', critical: '5' };

/** The request a notification becomes for one webhook format. */
export function renderNotification(
  format: Webhook['format'],
  n: Notification,
  host = hostname(),
): { headers: Record<string, string>; body: string } {
  const e = n.episode;
  const subject = e.subject ? ` ${e.subject}` : '';
  const title = `${n.status === 'firing' ? 'FIRING' : 'RESOLVED'} [${e.severity}] ${e.rule}${subject}`;
  if (format === 'slack') {
    const icon =
      n.status === 'resolved' ? ':white_check_mark:' : e.severity === 'critical' ? ':rotating_light:' : ':warning:';
    const text = `${icon} *${slackEscape(title)}* on ${slackEscape(host)}\n${slackEscape(e.summary)}`;
    return { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) };
  }
  if (format === 'ntfy') {
    return {
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        title: headerSafe(`Corral on ${host}: ${title}`),
        priority: n.status === 'resolved' ? '3' : NTFY_PRIORITY[e.severity],
        tags: n.status === 'resolved' ? 'white_check_mark' : e.severity === 'critical' ? 'rotating_light' : 'warning',
      },
      body: e.summary,
    };
  }
  return {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      source: 'corral',
      host,
      status: n.status,
      id: e.id,
      rule: e.rule,
      subject: e.subject,
      severity: e.severity,
      summary: e.summary,
      started_at: iso(e.startedAt),
      resolved_at: iso(e.resolvedAt),
    }),
  };
}

export interface RetryPolicy {
  attempts: number;
  initialMs: number;
  maxMs: number;
}

export interface DeliveryLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Only the host is logged: webhook URLs carry secrets in their path or query. */
const where = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
};

/**
 * Sends notifications in order per webhook (a "resolved" never overtakes its "firing"), retrying a
 * network error, 429 or 5xx with exponential backoff; other answers are final.
 */
export function createDelivery(log: DeliveryLog) {
  const queues = new Map<string, Promise<void>>();
  const stop = new AbortController();

  const attempt = async (hook: Webhook, req: { headers: Record<string, string>; body: string }): Promise<number> => {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: { ...req.headers, ...hook.headers },
      body: req.body,
      redirect: 'error',
      signal: AbortSignal.any([stop.signal, AbortSignal.timeout(10_000)]),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.status;
  };

  const deliver = async (hook: Webhook, n: Notification, retry: RetryPolicy): Promise<void> => {
    const req = renderNotification(hook.format, n);
    for (let i = 1; i <= retry.attempts && !stop.signal.aborted; i++) {
      let outcome: string;
      try {
        const status = await attempt(hook, req);
        if (status < 300) return;
        outcome = `HTTP ${status}`;
        if (status < 500 && status !== 429) {
          log.warn({ webhook: where(hook.url), status }, 'alert webhook refused the notification; not retried');
          return;
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        outcome = (err as Error).message;
      }
      if (i === retry.attempts) {
        log.warn({ webhook: where(hook.url), outcome, attempts: i }, 'alert webhook failed; notification dropped');
        return;
      }
      const wait = Math.min(retry.maxMs, retry.initialMs * 2 ** (i - 1));
      log.info({ webhook: where(hook.url), outcome, retryInMs: wait }, 'alert webhook failed; retrying');
      await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  };

  return {
    send(hook: Webhook, n: Notification, retry: RetryPolicy): void {
      const key = `${hook.format} ${hook.url}`;
      const next = (queues.get(key) ?? Promise.resolve()).then(() => deliver(hook, n, retry));
      const tracked = next.catch(() => undefined);
      queues.set(key, tracked);
      void tracked.then(() => {
        if (queues.get(key) === tracked) queues.delete(key);
      });
    },
    /** Waits for every queued notification (tests, shutdown with a grace period). */
    async idle(): Promise<void> {
      while (queues.size) await Promise.all(queues.values());
    },
    close(): void {
      stop.abort();
    },
  };
}

export type Delivery = ReturnType<typeof createDelivery>;
