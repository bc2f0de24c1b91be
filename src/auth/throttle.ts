/**
 * Failed-login throttling per (username, client address), with delays that double after a few free
 * tries, plus a looser budget per address (one address guessing many usernames). There is no
 * lockout by username alone: guesses from elsewhere cannot lock a user out of their own address.
 *
 * An attempt is counted when it starts, before the password is checked, so concurrent guesses
 * cannot all slip in before the first failure is recorded. Kept in memory (a restart forgets,
 * which helps only an attacker who can also restart the server); `corral user unlock` reaches a
 * running server through `unlockedAt`, a time read from the store.
 */
export interface LoginThrottleOptions {
  now?: () => number;
  /** Attempts per (username, address) before delays start. */
  freePerUser?: number;
  /** Attempts per address, over all usernames, before delays start. */
  freePerAddress?: number;
  /** Longest delay between attempts. */
  maxDelayMs?: number;
  /** When the user was last unlocked (ms); attempts counted before then are forgotten. */
  unlockedAt?: (username: string) => number | Promise<number>;
}

export interface LoginThrottle {
  /**
   * Counts the attempt and returns 0 when it may go on; else the seconds to wait (not counted). The
   * check and the count happen together after the unlock time is read, so concurrent attempts
   * cannot all pass one check.
   */
  begin(ip: string, username: string): Promise<number>;
  /** A correct password: this (username, address) pair starts afresh and the address gets its try back. */
  succeed(ip: string, username: string): void;
}

interface Attempts {
  count: number;
  first: number;
  last: number;
}

const DAY_MS = 86_400_000;
const MAX_KEYS = 50_000;

export function createLoginThrottle(options: LoginThrottleOptions = {}): LoginThrottle {
  const now = options.now ?? Date.now;
  const freePerUser = options.freePerUser ?? 5;
  const freePerAddress = options.freePerAddress ?? 30;
  const maxDelayMs = options.maxDelayMs ?? 15 * 60_000;
  const unlockedAt = options.unlockedAt ?? (() => 0);
  const attempts = new Map<string, Attempts>();

  const userKey = (ip: string, username: string) => `u:${username.toLowerCase()}\u0000${ip}`;
  const ipKey = (ip: string) => `ip:${ip}`;
  /** The entry of `key`, dropped when a day has passed since its last attempt or the user was unlocked since. */
  const current = (key: string, t: number, unlocked = 0): Attempts | undefined => {
    const a = attempts.get(key);
    if (a && (a.last + DAY_MS <= t || a.first <= unlocked)) attempts.delete(key);
    return attempts.get(key);
  };
  /** 1 s after the last attempt once the free ones are used, doubling with each further attempt. */
  const wait = (a: Attempts | undefined, free: number, t: number) => {
    if (!a || a.count < free) return 0;
    const delay = Math.min(maxDelayMs, 1000 * 2 ** Math.min(a.count - free, 30));
    return Math.max(0, a.last + delay - t);
  };
  const count = (key: string, t: number) => {
    const a = attempts.get(key) ?? { count: 0, first: t, last: t };
    a.count++;
    a.last = t;
    attempts.delete(key); // re-inserted last: the Map stays in least-recently-used order
    attempts.set(key, a);
  };
  const prune = (t: number) => {
    for (const [key, a] of attempts) if (a.last + DAY_MS <= t) attempts.delete(key);
    while (attempts.size > MAX_KEYS) attempts.delete(attempts.keys().next().value!);
  };

  return {
    async begin(ip, username) {
      const unlocked = await unlockedAt(username);
      const t = now();
      const uk = userKey(ip, username);
      const waitMs = Math.max(
        wait(current(uk, t, unlocked), freePerUser, t),
        wait(current(ipKey(ip), t), freePerAddress, t),
      );
      if (waitMs > 0) return waitMs / 1000;
      count(uk, t);
      count(ipKey(ip), t);
      if (attempts.size > MAX_KEYS) prune(t);
      return 0;
    },
    succeed(ip, username) {
      attempts.delete(userKey(ip, username));
      // Logins that worked do not use up an address's budget (many users behind one NAT).
      const a = attempts.get(ipKey(ip));
      if (a) a.count = Math.max(0, a.count - 1);
    },
  };
}
