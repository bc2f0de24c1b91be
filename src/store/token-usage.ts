import type Database from 'better-sqlite3';
import type { WriteQueue } from './write-queue.js';

/** UTC day key, so a daily limit resets at the same instant for everyone. */
export const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function createTokenUsageRepo(db: Database.Database, writes: WriteQueue) {
  const add = db.prepare(`INSERT INTO token_usage (token_id, day, tokens) VALUES (?, ?, ?)
    ON CONFLICT (token_id, day) DO UPDATE SET tokens = tokens + excluded.tokens`);
  const get = db.prepare('SELECT tokens FROM token_usage WHERE token_id = ? AND day = ?');
  const prune = db.prepare('DELETE FROM token_usage WHERE day < ?');
  return {
    add(tokenId: number, tokens: number, now = Date.now()) {
      const day = dayKey(now);
      writes.enqueue(() => add.run(tokenId, day, tokens));
    },
    /** Includes usage still queued: a daily limit must not be overrun by the commit delay. */
    get(tokenId: number, now = Date.now()): number {
      writes.flush();
      return (get.get(tokenId, dayKey(now)) as { tokens: number } | undefined)?.tokens ?? 0;
    },
    pruneBefore: (ms: number) => prune.run(dayKey(ms)).changes,
  };
}

export type TokenUsageRepo = ReturnType<typeof createTokenUsageRepo>;
