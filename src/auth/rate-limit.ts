/**
 * Requests-per-minute limits for API tokens: a token bucket per key that holds `rpm` requests and
 * refills continuously, so a client may burst up to its limit and then proceeds at the steady rate.
 * In memory: limits reset on restart, which errs on the side of letting requests through.
 */
export interface RateLimiter {
  /** 0 when allowed (and counted), else seconds until the next request would be allowed. */
  take(key: string, perMinute: number): number;
}

export function createRateLimiter(now: () => number = Date.now, maxKeys = 10_000): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key, perMinute) {
      const t = now();
      const ratePerMs = perMinute / 60_000;
      const b = buckets.get(key) ?? { tokens: perMinute, at: t };
      b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * ratePerMs);
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
