import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, type Migration } from './migrations.js';
import { sqliteClient } from './sqlite/client.js';
import { assembleStore, type Store } from './store.js';

export type { Store } from './store.js';

export interface StoreOptions {
  /** Only for tests that start from an older schema. */
  migrations?: readonly Migration[];
  /** Where failures of deferred writes go (they have no request to fail). */
  onWriteError?: (err: unknown) => void;
  /** Milliseconds to wait for another connection's write lock before failing. */
  busyTimeoutMs?: number;
  /** See RepoOptions.credentialCacheMs. */
  credentialCacheMs?: number;
  now?: () => number;
}

/**
 * A token lookup in SQLite costs a few microseconds in this process, about what the cache saves;
 * it is kept short so a revocation from the CLI (another process) applies within a second.
 */
export const SQLITE_CREDENTIAL_CACHE_MS = 1000;

/** The SQLite store: one file, opened in this process, migrated to the current schema. */
export function openDatabase(path: string, options: StoreOptions = {}): SqliteStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // WAL lets the admin UI read while requests write; NORMAL is durable across process crashes
  // (only an OS crash can lose the last commits), which is fine for logs and stamps.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  migrate(db, options.migrations ?? MIGRATIONS);

  const files = path === ':memory:' ? [] : [path, `${path}-wal`].map((file) => ({ file, id: fileId(file) }));
  /**
   * Why the store is no longer safe to write, if it is not: SQLite keeps writing to a database or
   * WAL file that was deleted (or replaced) under it, and those writes are lost at the next start.
   */
  const fileProblem = (): string | undefined => {
    for (const { file, id } of files) {
      if (id === undefined) continue;
      const now = fileId(file);
      if (now === undefined) return `${file} was deleted while Corral runs: new writes will be lost; restart Corral`;
      if (now !== id) return `${file} was replaced while Corral runs: new writes go elsewhere; restart Corral`;
    }
    return undefined;
  };

  const store = assembleStore(sqliteClient(db), {
    engine: 'sqlite',
    credentialCacheMs: options.credentialCacheMs ?? SQLITE_CREDENTIAL_CACHE_MS,
    now: options.now,
    onWriteError: options.onWriteError,
    async problem() {
      db.prepare('SELECT 1').get();
      return fileProblem();
    },
    disconnect: () => void db.close(),
  });
  return { ...store, db };
}

/** The SQLite store also hands out its connection, for backups and tests. */
export interface SqliteStore extends Store {
  readonly engine: 'sqlite';
  readonly db: Database.Database;
}

/** Device and inode: the same path naming a new file is another file. */
function fileId(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
