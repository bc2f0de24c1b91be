/**
 * Failed-login throttling, separately per client address (one attacker, many usernames) and per
 * username (many addresses, one account). Kept in memory: a restart forgets, which only helps an
 * attacker who can also restart the server.
 */
export interface LoginThrottleOptions {
  now?: () => number;
  /** Failures allowed per window before further attempts are refused. */
  maxPerIp?: number;
  maxPerUser?: number;
  windowMs?: number;
}

export interface LoginThrottle {
  /** 0 when an attempt may proceed, else seconds to wait. */
  retryAfter(ip: string, username: string): number;
  fail(ip: string, username: string): void;
  /** A correct password clears the username's failures (not the address's). */
  succeed(ip: string, username: string): void;
}

export function createLoginThrottle(options: LoginThrottleOptions = {}): LoginThrottle {
  const now = options.now ?? Date.now;
  const maxPerIp = options.maxPerIp ?? 20;
  const maxPerUser = options.maxPerUser ?? 5;
  const windowMs = options.windowMs ?? 15 * 60_000;
  const failures = new Map<string, number[]>();

  const recent = (key: string, t: number) => {
    const list = (failures.get(key) ?? []).filter((at) => at > t - windowMs);
    if (list.length) failures.set(key, list);
    else failures.delete(key);
    return list;
  };
  const waitFor = (key: string, max: number, t: number) => {
    const list = recent(key, t);
    return list.length < max ? 0 : (list[list.length - max]! + windowMs - t) / 1000;
  };
  const userKey = (u: string) => `u:${u.toLowerCase()}`;

  return {
    retryAfter(ip, username) {
      const t = now();
      return Math.max(waitFor(`ip:${ip}`, maxPerIp, t), waitFor(userKey(username), maxPerUser, t));
    },
    fail(ip, username) {
      const t = now();
      if (failures.size > 50_000) for (const key of [...failures.keys()]) recent(key, t);
      for (const key of [`ip:${ip}`, userKey(username)]) failures.set(key, [...recent(key, t), t]);
    },
    succeed(_ip, username) {
      failures.delete(userKey(username));
    },
  };
}
