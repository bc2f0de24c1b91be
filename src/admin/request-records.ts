import type { Store } from '../store/database.js';

/** One row of the request log as the activity page and charts show it. */
export interface RequestRecord {
  at: Date;
  model: string;
  /** Token name or user name. */
  who: string;
  status: number;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
  ttftMs?: number | undefined;
  tokensPerSecond?: number | undefined;
  durationMs: number;
}

export function recentRequests(
  store: Store,
  q: { limit: number; model?: string | undefined; since?: Date | undefined },
): RequestRecord[] {
  const rows = store.requestLog.recent({
    limit: q.limit,
    ...(q.model ? { model: q.model } : {}),
    ...(q.since ? { since: q.since.getTime() } : {}),
  });
  return rows.map((r) => {
    const genMs = r.total_ms !== null && r.ttft_ms !== null ? r.total_ms - r.ttft_ms : undefined;
    return {
      at: new Date(r.at),
      model: r.model ?? '—',
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
