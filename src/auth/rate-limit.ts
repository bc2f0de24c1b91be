import { RateLimited } from '../errors.js';
import type { Store } from '../store/database.js';
import { dayKey } from '../store/token-usage.js';
import { parseDuration } from '../config/duration.js';
import type { Principal } from './principal.js';

/**
 * Requests-per-minute limits for API tokens: a token bucket per key that holds `rpm` requests and
 * refills continuously, so a client may burst up to its limit and then proceeds at the steady rate.
 * In memory: limits reset on restart, which errs on the side of letting requests through.
 */
export interface RateLimiter {
  /** 0 when allowed (and counted), else seconds until the next one would be allowed; `limit` per `windowMs`. */
  take(key: string, limit: number, windowMs?: number): number;
}

export function createRateLimiter(now: () => number = Date.now, maxKeys = 10_000): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key, limit, windowMs = 60_000) {
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
    },
  };
}

/** An API token's requests per minute and tokens per UTC day: 429 with Retry-After beyond them. */
export function createTokenLimits(store: Store, limiter: RateLimiter, now: () => number) {
  return (principal: Principal): void => {
    if (principal.kind !== 'token' || principal.tokenId === undefined) return;
    const row = store.apiTokens.findById(principal.tokenId);
    if (row?.rpm) {
      const wait = limiter.take(`token:${row.id}`, row.rpm);
      if (wait > 0) throw new RateLimited(`rate limit of ${row.rpm} requests per minute exceeded`, wait);
    }
    if (row?.tpd && store.tokenUsage.get(row.id, now()) >= row.tpd) {
      const t = now();
      const midnight = Date.parse(`${dayKey(t)}T00:00:00Z`) + 86_400_000;
      throw new RateLimited(`daily limit of ${row.tpd} tokens reached`, (midnight - t) / 1000);
    }
  };
}

export type Operation = 'pull' | 'create' | 'model';
export type OperationLimits = Record<Operation, { count: number; per: string | number }>;

const OPERATION_NAMES: Record<Operation, string> = {
  pull: 'pulls',
  create: 'creates and copies',
  model: 'model loads, unloads and restarts',
};

/**
 * Per-operation limits for everyone but admins (pulls fill disks, loads and unloads disturb every
 * user of a model): a bucket per operation and user or token, 429 with Retry-After beyond it.
 */
export function createOperationLimits(limiter: RateLimiter, limits: () => OperationLimits) {
  return (principal: Principal, op: Operation): void => {
    if (principal.role === 'admin') return;
    const { count, per } = limits()[op];
    if (count <= 0) return;
    const windowMs = parseDuration(per);
    const who =
      principal.kind === 'user'
        ? `user:${principal.userId}`
        : principal.kind === 'token'
          ? `token:${principal.tokenId}`
          : principal.kind;
    const wait = limiter.take(`op:${op}:${who}`, count, windowMs);
    if (wait > 0)
      throw new RateLimited(
        `too many ${OPERATION_NAMES[op]}: at most ${count} per ${per} for non-admins; try again later`,
        wait,
      );
  };
}
