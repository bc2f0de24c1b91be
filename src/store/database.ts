import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, type Migration } from './migrations.js';
import { createWriteQueue } from './write-queue.js';
import { createUsersRepo } from './users.js';
import { createApiTokensRepo } from './api-tokens.js';
import { createSessionsRepo } from './sessions.js';
import { createAuditLogRepo } from './audit-log.js';
import { createRequestLogRepo } from './request-log.js';
import { createSettingsRepo } from './settings.js';
import { createTokenUsageRepo } from './token-usage.js';
import { createSetupTokensRepo } from './setup-tokens.js';
import { createConversationsRepo } from './conversations.js';
import { createAlertHistoryRepo } from './alert-history.js';

export interface StoreOptions {
  /** Only for tests that start from an older schema. */
  migrations?: readonly Migration[];
  /** Where failures of deferred writes go (they have no request to fail). */
  onWriteError?: (err: unknown) => void;
  /** Milliseconds to wait for another connection's write lock before failing. */
  busyTimeoutMs?: number;
}

export function openDatabase(path: string, options: StoreOptions = {}) {
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

  const writes = createWriteQueue(db, options.onWriteError);
  const store = {
    db,
    writes,
    users: createUsersRepo(db),
    apiTokens: createApiTokensRepo(db, writes),
    sessions: createSessionsRepo(db, writes),
    auditLog: createAuditLogRepo(db),
    requestLog: createRequestLogRepo(db, writes),
    settings: createSettingsRepo(db),
    tokenUsage: createTokenUsageRepo(db, writes),
    setupTokens: createSetupTokensRepo(db),
    conversations: createConversationsRepo(db),
    alertHistory: createAlertHistoryRepo(db),
    /**
     * Why the store is no longer safe to write, if it is not: SQLite keeps writing to a database or
     * WAL file that was deleted (or replaced) under it, and those writes are lost at the next start.
     */
    fileProblem(): string | undefined {
      for (const { file, id } of files) {
        if (id === undefined) continue;
        const now = fileId(file);
        if (now === undefined) return `${file} was deleted while Corral runs: new writes will be lost; restart Corral`;
        if (now !== id) return `${file} was replaced while Corral runs: new writes go elsewhere; restart Corral`;
      }
      return undefined;
    },
    /** Commits deferred writes; call before reading them back and on shutdown. */
    flush: () => writes.flush(),
    close() {
      if (!db.open) return;
      writes.flush();
      db.close();
    },
  };
  return store;
}

export type Store = ReturnType<typeof openDatabase>;

/** Device and inode: the same path naming a new file is another file. */
function fileId(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
