import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailable } from '../../errors.js';
import { assembleStore, type Store } from '../store.js';
import { postgresClient } from './client.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { connectPostgres, type PostgresHandle, type PostgresOptions, redactUrl } from './pool.js';

export interface PostgresStoreOptions extends PostgresOptions {
  onWriteError?: (err: unknown) => void;
  /** See RepoOptions.credentialCacheMs. */
  credentialCacheMs?: number;
  /** How long to wait at start for a server that does not answer yet (one starting beside Corral). */
  startupWaitMs?: number;
  now?: () => number;
}

/**
 * Nodes sharing the database see each other's changes to tokens, sessions and users after this
 * (their own at once): well inside the fleet's heartbeat, and most requests need no round trip.
 */
export const POSTGRES_CREDENTIAL_CACHE_MS = 1000;

/** The PostgreSQL store: a pool on `url`, migrated to the current schema before it is handed out. */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const pg = connectPostgres(url, options);
  try {
    await migrateWhenReachable(pg, options.startupWaitMs ?? 30_000);
  } catch (err) {
    await pg.close();
    throw new Error(`PostgreSQL store ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  const store = assembleStore(postgresClient(pg), {
    engine: 'postgres',
    credentialCacheMs: options.credentialCacheMs ?? POSTGRES_CREDENTIAL_CACHE_MS,
    now: options.now,
    onWriteError: options.onWriteError,
    async problem() {
      if (!pg.available)
        return `PostgreSQL is unreachable (${pg.lastError}); serving only credentials seen in the last minute`;
      try {
        await pg.query('SELECT 1');
        return undefined;
      } catch (err) {
        return `PostgreSQL: ${(err as Error).message}`;
      }
    },
    disconnect: () => pg.close(),
  });
  return { ...store, postgres: pg };
}

/** Migrates, trying again every second while the server cannot be reached, for up to `waitMs`. */
async function migrateWhenReachable(pg: PostgresHandle, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await pg.migrate('corral', POSTGRES_MIGRATIONS);
      return;
    } catch (err) {
      if (!(err instanceof StoreUnavailable) || Date.now() >= deadline) throw err;
      // Wait for the handle's own probe to find the server, then try again.
      while (!pg.available && Date.now() < deadline) await sleep(250);
    }
  }
}
