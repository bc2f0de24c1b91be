import { createAlertHistoryRepo } from './alert-history.js';
import { type ApiTokenRow, createApiTokensRepo } from './api-tokens.js';
import { createAuditLogRepo } from './audit-log.js';
import { createConversationsRepo } from './conversations.js';
import { createLookupCache } from './lookup-cache.js';
import type { PostgresHandle } from './postgres/pool.js';
import { createRateLimitsRepo } from './rate-limits.js';
import { createRequestLogRepo } from './request-log.js';
import { createSessionsRepo, type SessionRow } from './sessions.js';
import { createSettingsRepo } from './settings.js';
import { createSetupTokensRepo } from './setup-tokens.js';
import type { SqlDb } from './sql.js';
import { createTokenUsageRepo } from './token-usage.js';
import { createUsersRepo, type UserRow } from './users.js';
import { createWriteQueue, type WriteQueue } from './write-queue.js';

/** How long a credential validated while the database answered keeps working once it does not. */
export const STALE_CREDENTIALS_MS = 60_000;

export interface RepoOptions {
  /**
   * How long a token, session or user row read for a request is reused without asking again. A
   * change made on this node applies at once; one made elsewhere (another node, the CLI) after this.
   */
  credentialCacheMs: number;
  now?: () => number;
}

/** The repositories, one per table, over either engine: every method is async and engine-neutral. */
export function createRepos(db: SqlDb, writes: WriteQueue, options: RepoOptions) {
  const cache = <V>() =>
    createLookupCache<V>({ freshMs: options.credentialCacheMs, staleMs: STALE_CREDENTIALS_MS, now: options.now });
  return {
    users: createUsersRepo(db, cache<UserRow>()),
    apiTokens: createApiTokensRepo(db, writes, cache<ApiTokenRow>()),
    sessions: createSessionsRepo(db, writes, cache<SessionRow>()),
    auditLog: createAuditLogRepo(db),
    requestLog: createRequestLogRepo(db, writes),
    settings: createSettingsRepo(db),
    tokenUsage: createTokenUsageRepo(db, writes),
    setupTokens: createSetupTokensRepo(db),
    conversations: createConversationsRepo(db),
    alertHistory: createAlertHistoryRepo(db),
    rateLimits: createRateLimitsRepo(db),
  };
}

export type Repos = ReturnType<typeof createRepos>;

/**
 * Corral's database, SQLite (embedded, the default) or PostgreSQL (`store.url`, shared by nodes).
 * Callers use the repositories and never learn which engine holds them.
 */
export interface Store extends Repos {
  readonly engine: 'sqlite' | 'postgres';
  readonly writes: WriteQueue;
  /** Why the store cannot serve right now (for /ready), or undefined when it can. */
  problem(): Promise<string | undefined>;
  /** Commits deferred writes; call before reading them back and on shutdown. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** PostgreSQL only: the connection pool and migration runner, for modules that keep tables of their own. */
  readonly postgres?: PostgresHandle;
}

/** What an engine adds to the repositories: how it checks itself and lets go of its connection. */
export interface EngineParts<E extends Store['engine']> extends Partial<RepoOptions> {
  engine: E;
  credentialCacheMs: number;
  onWriteError?: (err: unknown) => void;
  problem(): Promise<string | undefined>;
  /** Closes the connection; deferred writes are committed before. */
  disconnect(): Promise<void> | void;
}

/** A store over `db`: the repositories, deferred writes, and the engine's own parts. */
export function assembleStore<E extends Store['engine']>(db: SqlDb, parts: EngineParts<E>): Store & { engine: E } {
  const writes = createWriteQueue(db, { onError: parts.onWriteError });
  let closed = false;
  return {
    engine: parts.engine,
    ...createRepos(db, writes, { credentialCacheMs: parts.credentialCacheMs, now: parts.now }),
    writes,
    problem: parts.problem,
    flush: () => writes.flush(),
    async close() {
      if (closed) return;
      closed = true;
      await writes.flush().catch(parts.onWriteError ?? (() => {}));
      await parts.disconnect();
    },
  };
}
