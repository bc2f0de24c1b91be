import type Database from 'better-sqlite3';
import type { Role } from '../auth/principal.js';
import type { WriteQueue } from './write-queue.js';

export interface ApiTokenRow {
  id: number;
  name: string;
  token_hash: string;
  role: Role;
  /** JSON array of model names, or null for all models. */
  models: string | null;
  rpm: number | null;
  /** Tokens (prompt + generated) per UTC day. */
  tpd: number | null;
  expires_at: number | null;
  created_at: number;
  created_by: string | null;
  last_used_at: number | null;
  revoked_at: number | null;
  /** The secret's first characters (TOKEN_PREFIX and a few more); null for tokens made before it was kept. */
  prefix: string | null;
}

export interface NewApiToken {
  name: string;
  tokenHash: string;
  role: Role;
  models?: string[] | null;
  rpm?: number | null;
  tpd?: number | null;
  expiresAt?: number | null;
  createdBy?: string | null;
  prefix?: string | null;
}

export type ApiTokenInfo = Omit<ApiTokenRow, 'token_hash' | 'models'> & { models: string[] | null };

export function toTokenInfo(row: ApiTokenRow): ApiTokenInfo {
  const { token_hash: _hash, models, ...rest } = row;
  return { ...rest, models: models === null ? null : (JSON.parse(models) as string[]) };
}

export function createApiTokensRepo(db: Database.Database, writes: WriteQueue) {
  const insert = db.prepare(`INSERT INTO api_tokens
    (name, token_hash, role, models, rpm, tpd, expires_at, created_at, created_by, prefix)
    VALUES (@name, @tokenHash, @role, @models, @rpm, @tpd, @expiresAt, @createdAt, @createdBy, @prefix)`);
  const byHash = db.prepare('SELECT * FROM api_tokens WHERE token_hash = ?');
  const byId = db.prepare('SELECT * FROM api_tokens WHERE id = ?');
  const all = db.prepare('SELECT * FROM api_tokens ORDER BY id');
  const revoke = db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');

  return {
    create(t: NewApiToken, now = Date.now()): number {
      const result = insert.run({
        name: t.name,
        tokenHash: t.tokenHash,
        role: t.role,
        models: t.models ? JSON.stringify(t.models) : null,
        rpm: t.rpm ?? null,
        tpd: t.tpd ?? null,
        expiresAt: t.expiresAt ?? null,
        createdAt: now,
        createdBy: t.createdBy ?? null,
        prefix: t.prefix ?? null,
      });
      return Number(result.lastInsertRowid);
    },
    findByHash: (hash: string) => byHash.get(hash) as ApiTokenRow | undefined,
    findById: (id: number) => byId.get(id) as ApiTokenRow | undefined,
    /** Flushes first, so last-used stamps still queued show. */
    list: () => {
      writes.flush();
      return (all.all() as ApiTokenRow[]).map(toTokenInfo);
    },
    revoke: (id: number, now = Date.now()) => revoke.run(now, id).changes > 0,
    /** Deferred: a last-used stamp is not worth delaying a response for. */
    touch(id: number, now = Date.now()) {
      writes.enqueue(() => touch.run(now, id));
    },
  };
}

export type ApiTokensRepo = ReturnType<typeof createApiTokensRepo>;
