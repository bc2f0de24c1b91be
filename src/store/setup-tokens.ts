import { type SqlDb, statement } from './sql.js';

/** One-time tokens for creating the first admin through the browser; stored as SHA-256 only. */
export function createSetupTokensRepo(db: SqlDb) {
  return {
    /** Any earlier unused token is voided: only the most recently printed URL works. */
    async create(hash: string, expiresAt: number, now = Date.now()): Promise<void> {
      await db.batch([
        statement('UPDATE setup_tokens SET used_at = ? WHERE used_at IS NULL', now),
        statement('INSERT INTO setup_tokens (token_hash, expires_at) VALUES (?, ?)', hash, expiresAt),
      ]);
    },
    /** True exactly once for a valid, unexpired token. */
    consume: async (hash: string, now = Date.now()) =>
      (await db.run('UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?', [
        now,
        hash,
        now,
      ])) === 1,
  };
}

export type SetupTokensRepo = ReturnType<typeof createSetupTokensRepo>;
