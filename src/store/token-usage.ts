import type { SqlDb } from './sql.js';
import type { WriteQueue } from './write-queue.js';

/** UTC day key, so a daily limit resets at the same instant for everyone. */
export const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Tokens used per API token and UTC day. Every node adds with one atomic upsert, so nodes sharing
 * a database count together and a limit holds across all of them.
 */
export function createTokenUsageRepo(db: SqlDb, writes: WriteQueue) {
  return {
    add(tokenId: number, tokens: number, now = Date.now()) {
      writes.enqueue({
        sql: `INSERT INTO token_usage (token_id, day, tokens) VALUES (?, ?, ?)
          ON CONFLICT (token_id, day) DO UPDATE SET tokens = token_usage.tokens + excluded.tokens`,
        params: [tokenId, dayKey(now), tokens],
      });
    },
    /** Includes usage still queued: a daily limit must not be overrun by the commit delay. */
    async get(tokenId: number, now = Date.now()): Promise<number> {
      await writes.flush();
      const row = await db.get<{ tokens: number }>('SELECT tokens FROM token_usage WHERE token_id = ? AND day = ?', [
        tokenId,
        dayKey(now),
      ]);
      return row?.tokens ?? 0;
    },
    pruneBefore: (ms: number) => db.run('DELETE FROM token_usage WHERE day < ?', [dayKey(ms)]),
  };
}

export type TokenUsageRepo = ReturnType<typeof createTokenUsageRepo>;
