import type { Store } from '../store/store.js';

export type Outcome = 'ok' | 'rejected' | 'cancelled' | 'client error' | 'failed';

/** What a status means for someone reading the Activity page. */
export function outcomeOf(status: number): { outcome: Outcome; label: string } {
  if (status < 400) return { outcome: 'ok', label: 'ok' };
  if (status === 499) return { outcome: 'cancelled', label: 'cancelled by the client' };
  const rejected: Record<number, string> = {
    401: 'no valid credential',
    403: 'not allowed',
    429: 'rate limited',
    503: 'busy or unavailable',
  };
  if (rejected[status]) return { outcome: 'rejected', label: rejected[status] };
  if (status < 500) return { outcome: 'client error', label: status === 404 ? 'not found' : 'bad request' };
  return { outcome: 'failed', label: status === 507 ? 'does not fit' : 'server error' };
}

/** One row of the request log as the activity page and charts show it. */
export interface RequestRecord {
  id: number;
  at: Date;
  model: string;
  endpoint: string;
  outcome: Outcome;
  /** The outcome in words, e.g. "rate limited". */
  outcomeLabel: string;
  /** Token name or user name. */
  who: string;
  status: number;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  ttftMs?: number | undefined;
  tokensPerSecond?: number | undefined;
  durationMs: number;
}

export async function recentRequests(
  store: Store,
  q: { limit: number; model?: string | undefined; since?: Date | undefined },
): Promise<RequestRecord[]> {
  const rows = await store.requestLog.recent({
    limit: q.limit,
    ...(q.model ? { model: q.model } : {}),
    ...(q.since ? { since: q.since.getTime() } : {}),
  });
  return rows.map((r) => {
    const genMs = r.total_ms !== null && r.ttft_ms !== null ? r.total_ms - r.ttft_ms : undefined;
    const { outcome, label } = outcomeOf(r.status);
    return {
      id: r.id,
      at: new Date(r.at),
      model: r.model ?? '—',
      endpoint: r.endpoint,
      outcome,
      outcomeLabel: label,
      who: r.principal,
      status: r.status,
      promptTokens: r.prompt_tokens ?? undefined,
      completionTokens: r.eval_tokens ?? undefined,
      ttftMs: r.ttft_ms ?? undefined,
      tokensPerSecond: r.eval_tokens && genMs && genMs > 0 ? r.eval_tokens / (genMs / 1000) : undefined,
      durationMs: r.total_ms ?? 0,
    };
  });
}

/** Counts per outcome, in the order the Activity page lists them. */
export function outcomeCounts(records: RequestRecord[]): { outcome: Outcome; count: number }[] {
  const order: Outcome[] = ['ok', 'rejected', 'cancelled', 'client error', 'failed'];
  return order.map((outcome) => ({ outcome, count: records.filter((r) => r.outcome === outcome).length }));
}
