import { StoreUnavailable } from '../errors.js';

export interface LookupCacheOptions {
  /** How long a found row is used without asking the database again. */
  freshMs: number;
  /** How long a row found earlier still serves while the database is unreachable. */
  staleMs: number;
  max?: number;
  now?: () => number;
}

export interface LookupCache<V> {
  /** The cached row while fresh, else `load`'s (kept when found); the stale row only when the store is unreachable. */
  get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined>;
  delete(key: string): void;
  /** Drops every entry whose row matches, e.g. all of one token after a revocation. */
  deleteWhere(match: (value: V) => boolean): void;
  /** Changes the cached copy of a row, as a write made here changed the row itself. */
  patch(key: string, change: (value: V) => V): void;
}

/**
 * The credential lookups of the request path (token by hash, session by id): a short-lived copy
 * spares the database a round trip per request, and a row validated within `staleMs` keeps its
 * holder served while the database is down. Misses are never cached, so a credential made on
 * another node works at once; concurrent loads of one key share one query.
 */
export function createLookupCache<V>(options: LookupCacheOptions): LookupCache<V> {
  const { freshMs, staleMs } = options;
  const max = options.max ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, { value: V; at: number }>();
  const loading = new Map<string, Promise<V | undefined>>();
  // Bumped by every removal: a load that began before a revocation must not cache the revoked row.
  let generation = 0;

  const remember = (key: string, value: V) => {
    entries.delete(key);
    entries.set(key, { value, at: now() });
    // A Map iterates in insertion order: the first key is the least recently loaded.
    if (entries.size > max) entries.delete(entries.keys().next().value!);
  };
  const load = async (key: string, loader: () => Promise<V | undefined>) => {
    const started = generation;
    try {
      const value = await loader();
      if (value === undefined) entries.delete(key);
      else if (started === generation) remember(key, value);
      return value;
    } catch (err) {
      const e = entries.get(key);
      if (err instanceof StoreUnavailable && e && now() - e.at < staleMs) return e.value;
      throw err;
    }
  };
  return {
    get(key, loader) {
      const e = entries.get(key);
      if (e && now() - e.at < freshMs) return Promise.resolve(e.value);
      const pending = loading.get(key);
      if (pending) return pending;
      const p: Promise<V | undefined> = load(key, loader).finally(() => {
        if (loading.get(key) === p) loading.delete(key);
      });
      loading.set(key, p);
      return p;
    },
    delete(key) {
      generation++;
      loading.clear();
      entries.delete(key);
    },
    deleteWhere(match) {
      generation++;
      loading.clear();
      for (const [key, e] of entries) if (match(e.value)) entries.delete(key);
    },
    patch(key, change) {
      const e = entries.get(key);
      if (e) e.value = change(e.value);
    },
  };
}
