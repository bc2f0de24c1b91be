import { isBusy, type Entry } from './entry.js';

/** Stops an entry's keep_alive clock. */
export function clearExpiry(entry: Entry): void {
  if (entry.timer) clearTimeout(entry.timer);
  entry.timer = undefined;
  entry.expiresAt = undefined;
}

/**
 * Starts an idle entry's keep_alive clock; `expire(reason)` is called when the model should be
 * unloaded: at once for keep_alive 0, never for pinned models or a negative keep_alive.
 */
export function armExpiry(entry: Entry, now: () => number, expire: (reason: string) => void): void {
  clearExpiry(entry);
  if (entry.model.pinned || entry.keepAliveMs === Infinity) return;
  if (entry.keepAliveMs <= 0) return expire('keep_alive 0');
  entry.expiresAt = now() + entry.keepAliveMs;
  schedule(entry, now, expire);
}

function schedule(entry: Entry, now: () => number, expire: (reason: string) => void): void {
  const remaining = (entry.expiresAt ?? 0) - now();
  // setTimeout caps at ~24.8 days; a longer keep_alive simply waits again when that fires.
  entry.timer = setTimeout(
    () => {
      if (isBusy(entry) || entry.expiresAt === undefined) return;
      if (entry.expiresAt - now() > 1000) return schedule(entry, now, expire);
      expire('keep_alive expired');
    },
    Math.max(0, Math.min(remaining, 2 ** 31 - 1)),
  );
  entry.timer.unref();
}
