import type Database from 'better-sqlite3';
import type { WriteQueue } from './write-queue.js';

export interface RequestLogEntry {
  tokenId?: number | null;
  userId?: number | null;
  /** Display name of who asked: token name, username, or "loopback". */
  principal: string;
  model?: string | null;
  endpoint: string;
  status: number;
  promptTokens?: number | null;
  evalTokens?: number | null;
  loadMs?: number | null;
  ttftMs?: number | null;
  totalMs?: number | null;
  /** Time the request waited for a free slot. */
  queueWaitMs?: number | null;
  /** Defaults to the time write() was called. */
  at?: number;
  /** The id also sent to llama-server and returned as x-request-id, to join logs. */
  requestId?: string | null;
}

export interface RequestLogRow {
  id: number;
  at: number;
  token_id: number | null;
  user_id: number | null;
  principal: string;
  model: string | null;
  endpoint: string;
  status: number;
  prompt_tokens: number | null;
  eval_tokens: number | null;
  load_ms: number | null;
  ttft_ms: number | null;
  total_ms: number | null;
  request_id: string | null;
  queue_wait_ms: number | null;
}

/** What usage reports and alert rules read of a request. */
export type RequestSample = Pick<
  RequestLogRow,
  'at' | 'principal' | 'model' | 'status' | 'prompt_tokens' | 'eval_tokens' | 'ttft_ms' | 'total_ms' | 'queue_wait_ms'
>;

/**
 * The requests of [since, until) that named a model, a page at a time, yielding to the event loop
 * between pages: a report over a month of a busy gateway never holds up the requests it serves.
 * Pages follow the primary key between the first and last row of the period (found through the
 * `at` index), so each page is one short indexed read and no statement stays open across a yield.
 */
export async function* requestPages(
  db: Database.Database,
  since: number,
  until: number,
  pageSize = 2000,
): AsyncGenerator<RequestSample[]> {
  const bounds = db
    .prepare('SELECT MIN(id) AS first, MAX(id) AS last FROM request_log WHERE at >= ? AND at < ?')
    .get(since, until) as { first: number | null; last: number | null };
  if (bounds.first === null || bounds.last === null) return;
  const page = db.prepare(`SELECT id, at, principal, model, status, prompt_tokens, eval_tokens, ttft_ms, total_ms,
    queue_wait_ms FROM request_log WHERE id >= @from AND id <= @last ORDER BY id LIMIT @n`);
  for (let from = bounds.first; from <= bounds.last; ) {
    const rows = page.all({ from, last: bounds.last, n: pageSize }) as (RequestSample & { id: number })[];
    if (rows.length === 0) return;
    from = rows.at(-1)!.id + 1;
    yield rows.filter((r) => r.at >= since && r.at < until && r.model !== null);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export function createRequestLogRepo(db: Database.Database, writes: WriteQueue, clock: () => number = Date.now) {
  const insert = db.prepare(`INSERT INTO request_log
    (at, token_id, user_id, principal, model, endpoint, status, prompt_tokens, eval_tokens, load_ms, ttft_ms, total_ms,
    request_id, queue_wait_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const recent = db.prepare(`SELECT * FROM request_log WHERE (@model IS NULL OR model = @model)
    AND (@since IS NULL OR at >= @since) ORDER BY id DESC LIMIT @limit`);
  const prune = db.prepare('DELETE FROM request_log WHERE at < ?');

  return {
    /** Never blocks: the row is committed with others shortly after (see write-queue.ts). */
    write(e: RequestLogEntry) {
      const at = e.at ?? clock();
      writes.enqueue(() =>
        insert.run(
          at,
          e.tokenId ?? null,
          e.userId ?? null,
          e.principal,
          e.model ?? null,
          e.endpoint,
          e.status,
          e.promptTokens ?? null,
          e.evalTokens ?? null,
          e.loadMs ?? null,
          e.ttftMs ?? null,
          e.totalMs ?? null,
          e.requestId ?? null,
          e.queueWaitMs ?? null,
        ),
      );
    },
    flush: () => writes.flush(),
    recent(q: { model?: string; since?: number; limit?: number } = {}): RequestLogRow[] {
      writes.flush();
      return recent.all({ model: q.model ?? null, since: q.since ?? null, limit: q.limit ?? 100 }) as RequestLogRow[];
    },
    /** See requestPages; deferred writes are committed first, so what was just logged is counted. */
    pages(since: number, until: number = clock() + 1): AsyncGenerator<RequestSample[]> {
      writes.flush();
      return requestPages(db, since, until);
    },
    pruneBefore: (ms: number) => prune.run(ms).changes,
  };
}

export type RequestLogRepo = ReturnType<typeof createRequestLogRepo>;
