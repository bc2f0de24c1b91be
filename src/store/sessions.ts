import type Database from 'better-sqlite3';
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

export function createSessionsRepo(db: Database.Database, writes: WriteQueue) {
  const insert =
    db.prepare(`INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent)
    VALUES (?, ?, ?, ?, ?, ?, ?)`);
  const get = db.prepare('SELECT * FROM sessions WHERE id_hash = ?');
  const touch = db.prepare('UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?) WHERE id_hash = ?');
  const revoke = db.prepare('UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL');
  const revokeUser = db.prepare('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL');
  const active = db.prepare(
    'SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at',
  );
  const prune = db.prepare('DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?');

  return {
    create(
      s: { idHash: string; userId: number; expiresAt: number; ip?: string; userAgent?: string },
      now = Date.now(),
    ) {
      insert.run(s.idHash, s.userId, now, now, s.expiresAt, s.ip ?? null, s.userAgent ?? null);
    },
    /** Flushes first: idle expiry is judged on last_seen_at, which a queued touch may still be moving. */
    get(idHash: string): SessionRow | undefined {
      writes.flush();
      return get.get(idHash) as SessionRow | undefined;
    },
    /** Deferred, like every last-used stamp. */
    touch(idHash: string, now = Date.now()) {
      writes.enqueue(() => touch.run(now, idHash));
    },
    revoke: (idHash: string, now = Date.now()) => revoke.run(now, idHash).changes > 0,
    revokeAllForUser: (userId: number, now = Date.now()) => revokeUser.run(now, userId).changes,
    activeForUser: (userId: number, now = Date.now()) => active.all(userId, now) as SessionRow[],
    pruneBefore: (ms: number) => prune.run(ms, ms).changes,
  };
}

export type SessionsRepo = ReturnType<typeof createSessionsRepo>;
