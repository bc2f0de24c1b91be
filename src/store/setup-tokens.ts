import type Database from 'better-sqlite3';

/** One-time tokens for creating the first admin through the browser; stored as SHA-256 only. */
export function createSetupTokensRepo(db: Database.Database) {
  const insert = db.prepare('INSERT INTO setup_tokens (token_hash, expires_at) VALUES (?, ?)');
  const expireAll = db.prepare('UPDATE setup_tokens SET used_at = ? WHERE used_at IS NULL');
  const consume = db.prepare(
    'UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?',
  );
  return {
    /** Any earlier unused token is voided: only the most recently printed URL works. */
    create(hash: string, expiresAt: number, now = Date.now()) {
      expireAll.run(now);
      insert.run(hash, expiresAt);
    },
    /** True exactly once for a valid, unexpired token. */
    consume: (hash: string, now = Date.now()) => consume.run(now, hash, now).changes === 1,
  };
}

export type SetupTokensRepo = ReturnType<typeof createSetupTokensRepo>;
