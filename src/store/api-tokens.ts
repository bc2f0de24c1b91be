import type { Role } from '../auth/principal.js';
import type { LookupCache } from './lookup-cache.js';
import type { SqlDb } from './sql.js';
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

/**
 * `findByHash` and `findById` are the per-request lookups and go through `cache` (see
 * lookup-cache.ts); a revocation made here drops the token from it at once.
 */
export function createApiTokensRepo(db: SqlDb, writes: WriteQueue, cache: LookupCache<ApiTokenRow>) {
  const get = (column: 'token_hash' | 'id', value: string | number) =>
    db.get<ApiTokenRow>(`SELECT * FROM api_tokens WHERE ${column} = ?`, [value]);
  return {
    async create(t: NewApiToken, now = Date.now()): Promise<number> {
      const row = await db.get<{ id: number }>(
        `INSERT INTO api_tokens (name, token_hash, role, models, rpm, tpd, expires_at, created_at, created_by, prefix)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [
          t.name,
          t.tokenHash,
          t.role,
          t.models ? JSON.stringify(t.models) : null,
          t.rpm ?? null,
          t.tpd ?? null,
          t.expiresAt ?? null,
          now,
          t.createdBy ?? null,
          t.prefix ?? null,
        ],
      );
      return row!.id;
    },
    findByHash: (hash: string) => cache.get(`h:${hash}`, () => get('token_hash', hash)),
    findById: (id: number) => cache.get(`i:${id}`, () => get('id', id)),
    /** Flushes first, so last-used stamps still queued show. */
    async list(): Promise<ApiTokenInfo[]> {
      await writes.flush();
      return (await db.all<ApiTokenRow>('SELECT * FROM api_tokens ORDER BY id')).map(toTokenInfo);
    },
    async revoke(id: number, now = Date.now()): Promise<boolean> {
      const changed = await db.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [
        now,
        id,
      ]);
      cache.deleteWhere((row) => row.id === id);
      return changed > 0;
    },
    /** Deferred: a last-used stamp is not worth delaying a response for. */
    touch(id: number, now = Date.now()) {
      writes.enqueue({ sql: 'UPDATE api_tokens SET last_used_at = ? WHERE id = ?', params: [now, id] }, `token:${id}`);
    },
  };
}

export type ApiTokensRepo = ReturnType<typeof createApiTokensRepo>;
