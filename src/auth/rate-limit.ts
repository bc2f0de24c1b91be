import { RateLimited } from '../errors.js';
import type { RateLimiter } from '../store/rate-limits.js';
import type { Store } from '../store/store.js';
import { dayKey } from '../store/token-usage.js';
import { parseDuration } from '../config/duration.js';
import type { Principal } from './principal.js';

export type { RateLimiter } from '../store/rate-limits.js';
export { createMemoryRateLimiter as createRateLimiter } from '../store/rate-limits.js';

/**
 * An API token's requests per minute and tokens per UTC day: 429 with Retry-After beyond them. The
 * limiter and the usage counts live in the store, so nodes sharing a PostgreSQL store enforce them
 * together.
 */
export function createTokenLimits(store: Store, limiter: RateLimiter, now: () => number) {
  return async (principal: Principal): Promise<void> => {
    if (principal.kind !== 'token' || principal.tokenId === undefined) return;
    const row = await store.apiTokens.findById(principal.tokenId);
    if (row?.rpm) {
      const wait = await limiter.take(`token:${row.id}`, row.rpm);
      if (wait > 0) throw new RateLimited(`rate limit of ${row.rpm} requests per minute exceeded`, wait);
    }
    if (row?.tpd && (await store.tokenUsage.get(row.id, now())) >= row.tpd) {
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
  return async (principal: Principal, op: Operation): Promise<void> => {
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
    const wait = await limiter.take(`op:${op}:${who}`, count, windowMs);
    if (wait > 0)
      throw new RateLimited(
        `too many ${OPERATION_NAMES[op]}: at most ${count} per ${per} for non-admins; try again later`,
        wait,
      );
  };
}
