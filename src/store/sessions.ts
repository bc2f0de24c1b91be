import type { LookupCache } from './lookup-cache.js';
import type { SqlDb } from './sql.js';
import type { WriteQueue } from './write-queue.js';

export interface SessionRow {
  /** SHA-256 of the session id: a copied database file does not yield live session ids. */
  id_hash: string;
  user_id: number;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  revoked_at: number | null;
  ip: string | null;
  user_agent: string | null;
}

/** `get` is the per-request lookup and goes through `cache`; revocations made here drop their sessions from it. */
export function createSessionsRepo(db: SqlDb, writes: WriteQueue, cache: LookupCache<SessionRow>) {
  return {
    async create(
      s: { idHash: string; userId: number; expiresAt: number; ip?: string; userAgent?: string },
      now = Date.now(),
    ): Promise<void> {
      await db.run(
        `INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent)
        VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [s.idHash, s.userId, now, now, s.expiresAt, s.ip ?? null, s.userAgent ?? null],
      );
    },
    /** Flushes first: idle expiry is judged on last_seen_at, which a queued touch may still be moving. */
    get: (idHash: string): Promise<SessionRow | undefined> =>
      cache.get(idHash, async () => {
        await writes.flush();
        return db.get<SessionRow>('SELECT * FROM sessions WHERE id_hash = ?', [idHash]);
      }),
    /** Deferred, like every last-used stamp; a later stamp never moves it back. The cached row moves at once. */
    touch(idHash: string, now = Date.now()) {
      const sql = `UPDATE sessions SET last_seen_at = CASE WHEN last_seen_at > ? THEN last_seen_at ELSE ? END
        WHERE id_hash = ?`;
      writes.enqueue({ sql, params: [now, now, idHash] });
      cache.patch(idHash, (row) => ({ ...row, last_seen_at: Math.max(row.last_seen_at, now) }));
    },
    async revoke(idHash: string, now = Date.now()): Promise<boolean> {
      const changed = await db.run('UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL', [
        now,
        idHash,
      ]);
      cache.delete(idHash);
      return changed > 0;
    },
    async revokeAllForUser(userId: number, now = Date.now()): Promise<number> {
      const changed = await db.run('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL', [
        now,
        userId,
      ]);
      cache.deleteWhere((row) => row.user_id === userId);
      return changed;
    },
    activeForUser: (userId: number, now = Date.now()) =>
      db.all<SessionRow>(
        'SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at',
        [userId, now],
      ),
    pruneBefore: (ms: number) => db.run('DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?', [ms, ms]),
  };
}

export type SessionsRepo = ReturnType<typeof createSessionsRepo>;
