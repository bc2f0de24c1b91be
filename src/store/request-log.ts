import { type SqlDb, whereGiven } from './sql.js';
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
  db: SqlDb,
  since: number,
  until: number,
  pageSize = 2000,
): AsyncGenerator<RequestSample[]> {
  const bounds = await db.get<{ first: number | null; last: number | null }>(
    'SELECT MIN(id) AS first, MAX(id) AS last FROM request_log WHERE at >= ? AND at < ?',
    [since, until],
  );
  if (!bounds || bounds.first === null || bounds.last === null) return;
  const page = `SELECT id, at, principal, model, status, prompt_tokens, eval_tokens, ttft_ms, total_ms, queue_wait_ms
    FROM request_log WHERE id >= ? AND id <= ? ORDER BY id LIMIT ?`;
  for (let from = bounds.first; from <= bounds.last; ) {
    const rows = await db.all<RequestSample & { id: number }>(page, [from, bounds.last, pageSize]);
    if (rows.length === 0) return;
    from = rows.at(-1)!.id + 1;
    yield rows.filter((r) => r.at >= since && r.at < until && r.model !== null);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const INSERT = `INSERT INTO request_log (at, token_id, user_id, principal, model, endpoint, status, prompt_tokens,
  eval_tokens, load_ms, ttft_ms, total_ms, request_id, queue_wait_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export function createRequestLogRepo(db: SqlDb, writes: WriteQueue, clock: () => number = Date.now) {
  return {
    /** Never blocks: the row is committed with others shortly after (see write-queue.ts). */
    write(e: RequestLogEntry) {
      const params = [
        e.at ?? clock(),
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
      ];
      writes.enqueue({ sql: INSERT, params });
    },
    flush: () => writes.flush(),
    async recent(q: { model?: string; since?: number; limit?: number } = {}): Promise<RequestLogRow[]> {
      await writes.flush();
      const filter = whereGiven({ 'model = ?': q.model, 'at >= ?': q.since });
      return db.all<RequestLogRow>(`SELECT * FROM request_log ${filter.sql} ORDER BY id DESC LIMIT ?`, [
        ...filter.params,
        q.limit ?? 100,
      ]);
    },
    /** See requestPages; deferred writes are committed first, so what was just logged is counted. */
    async *pages(since: number, until: number = clock() + 1): AsyncGenerator<RequestSample[]> {
      await writes.flush();
      yield* requestPages(db, since, until);
    },
    pruneBefore: (ms: number) => db.run('DELETE FROM request_log WHERE at < ?', [ms]),
  };
}

export type RequestLogRepo = ReturnType<typeof createRequestLogRepo>;
