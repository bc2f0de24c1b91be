import { StoreUnavailable } from '../errors.js';
import type { SqlDb } from './sql.js';

/**
 * Requests-per-window limits: a token bucket per key that holds `limit` requests and refills
 * continuously, so a client may burst up to its limit and then proceeds at the steady rate.
 */
export interface RateLimiter {
  /** 0 when allowed (and counted), else seconds until the next one would be allowed; `limit` per `windowMs`. */
  take(key: string, limit: number, windowMs?: number): Promise<number>;
}

/** One node's buckets in memory: they reset on restart, which errs on the side of letting requests through. */
export function createMemoryRateLimiter(now: () => number = Date.now, maxKeys = 10_000): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const take = (key: string, limit: number, windowMs = 60_000) => {
    const t = now();
    const ratePerMs = limit / windowMs;
    const b = buckets.get(key) ?? { tokens: limit, at: t };
    b.tokens = Math.min(limit, b.tokens + (t - b.at) * ratePerMs);
    b.at = t;
    // Re-insert to keep the Map in least-recently-used order for eviction below.
    buckets.delete(key);
    buckets.set(key, b);
    if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / ratePerMs / 1000;
  };
  return { take: async (key, limit, windowMs) => take(key, limit, windowMs) };
}

/**
 * The bucket refilled for the time since it was last used and, when it holds a whole request, one
 * taken, in one statement: nodes sharing the database never both spend the same request.
 */
const TAKE = `INSERT INTO rate_limits AS b (key, tokens, at, allowed) VALUES ($1, $2::float8 - 1, $3::bigint, 1)
  ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST($2::float8, b.tokens + GREATEST(0, $3::bigint - b.at) * $4::float8)
      - CASE WHEN LEAST($2::float8, b.tokens + GREATEST(0, $3::bigint - b.at) * $4::float8) >= 1 THEN 1 ELSE 0 END,
    allowed = CASE WHEN LEAST($2::float8, b.tokens + GREATEST(0, $3::bigint - b.at) * $4::float8) >= 1 THEN 1 ELSE 0 END,
    at = GREATEST(b.at, $3::bigint)
  RETURNING tokens, allowed`;

/**
 * Buckets shared by every node of a PostgreSQL store. While the database is unreachable each node
 * falls back to its own buckets, so limits still apply, per node, rather than not at all.
 */
export function createSharedRateLimiter(db: SqlDb, now: () => number = Date.now): RateLimiter {
  const local = createMemoryRateLimiter(now);
  return {
    async take(key, limit, windowMs = 60_000) {
      const ratePerMs = limit / windowMs;
      try {
        const row = await db.get<{ tokens: number; allowed: number }>(TAKE, [key, limit, now(), ratePerMs]);
        return row!.allowed === 1 ? 0 : (1 - row!.tokens) / ratePerMs / 1000;
      } catch (err) {
        if (err instanceof StoreUnavailable) return local.take(key, limit, windowMs);
        throw err;
      }
    },
  };
}

export function createRateLimitsRepo(db: SqlDb) {
  return {
    /**
     * Buckets on `now`'s clock: in this process for SQLite (one node), in the database for
     * PostgreSQL, where every node takes from the same bucket.
     */
    limiter: (now: () => number = Date.now): RateLimiter =>
      db.dialect === 'postgres' ? createSharedRateLimiter(db, now) : createMemoryRateLimiter(now),
    /** Buckets unused since `ms` are full again anyway. */
    pruneBefore: (ms: number) =>
      db.dialect === 'postgres' ? db.run('DELETE FROM rate_limits WHERE at < ?', [ms]) : Promise.resolve(0),
  };
}

export type RateLimitsRepo = ReturnType<typeof createRateLimitsRepo>;
