import { StoreUnavailable } from '../errors.js';
import type { SqlDb } from './sql.js';
import type { WriteQueue } from './write-queue.js';

/** UTC day key, so a daily limit resets at the same instant for everyone. */
export const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Tokens used per API token and UTC day. Every node adds with one atomic upsert, so nodes sharing
 * a database count together and a limit holds across all of them.
 */
export function createTokenUsageRepo(db: SqlDb, writes: WriteQueue) {
  // The last count read per token and day plus what this node added since: the answer while the
  // database is unreachable, so a daily limit still holds (as far as this node knows) meanwhile.
  const known = new Map<string, number>();
  const remember = (key: string, tokens: number) => {
    if (known.size > 10_000) known.clear();
    known.set(key, tokens);
  };
  return {
    add(tokenId: number, tokens: number, now = Date.now()) {
      const day = dayKey(now);
      writes.enqueue({
        sql: `INSERT INTO token_usage (token_id, day, tokens) VALUES (?, ?, ?)
          ON CONFLICT (token_id, day) DO UPDATE SET tokens = token_usage.tokens + excluded.tokens`,
        params: [tokenId, day, tokens],
      });
      const key = `${tokenId}:${day}`;
      remember(key, (known.get(key) ?? 0) + tokens);
    },
    /** Includes usage still queued: a daily limit must not be overrun by the commit delay. */
    async get(tokenId: number, now = Date.now()): Promise<number> {
      const key = `${tokenId}:${dayKey(now)}`;
      try {
        await writes.flush();
        const row = await db.get<{ tokens: number }>('SELECT tokens FROM token_usage WHERE token_id = ? AND day = ?', [
          tokenId,
          dayKey(now),
        ]);
        remember(key, row?.tokens ?? 0);
        return row?.tokens ?? 0;
      } catch (err) {
        if (err instanceof StoreUnavailable) return known.get(key) ?? 0;
        throw err;
      }
    },
    pruneBefore: (ms: number) => db.run('DELETE FROM token_usage WHERE day < ?', [dayKey(ms)]),
  };
}

export type TokenUsageRepo = ReturnType<typeof createTokenUsageRepo>;
