import type { Role } from '../auth/principal.js';
import type { LookupCache } from './lookup-cache.js';
import type { SqlDb } from './sql.js';

export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  role: Role;
  created_at: number;
  updated_at: number;
  /** 1 when an admin has disabled the account: no login, no sessions. */
  disabled: number;
}

export type PublicUser = Omit<UserRow, 'password_hash'>;

/** Usernames compare without case on both engines (SQLite's NOCASE column, PostgreSQL's lower() index). */
const BY_NAME = {
  sqlite: 'SELECT * FROM users WHERE username = ?',
  postgres: 'SELECT * FROM users WHERE lower(username) = lower(?)',
} as const;

/** `findById` serves each session check and goes through `cache`; changes made here drop the user from it. */
export function createUsersRepo(db: SqlDb, cache: LookupCache<UserRow>) {
  const byName = BY_NAME[db.dialect];
  const change = async (id: number, sql: string, params: unknown[]) => {
    const changed = await db.run(sql, params);
    cache.delete(String(id));
    return changed > 0;
  };
  return {
    /** The caller hashes: the store never sees a clear password. */
    async create(username: string, passwordHash: string, role: Role, now = Date.now()): Promise<number> {
      const row = await db.get<{ id: number }>(
        'INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
        [username, passwordHash, role, now, now],
      );
      return row!.id;
    },
    findByUsername: (username: string) => db.get<UserRow>(byName, [username]),
    findById: (id: number) => cache.get(String(id), () => db.get<UserRow>('SELECT * FROM users WHERE id = ?', [id])),
    setPasswordHash: (id: number, hash: string, now = Date.now()) =>
      change(id, 'UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?', [hash, now, id]),
    setRole: (id: number, role: Role, now = Date.now()) =>
      change(id, 'UPDATE users SET role = ?, updated_at = ? WHERE id = ?', [role, now, id]),
    delete: (id: number) => change(id, 'DELETE FROM users WHERE id = ?', [id]),
    setDisabled: (id: number, disabled: boolean, now = Date.now()) =>
      change(id, 'UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?', [disabled ? 1 : 0, now, id]),
    list: () =>
      db.all<PublicUser>(
        'SELECT id, username, role, created_at, updated_at, disabled FROM users ORDER BY lower(username)',
      ),
    adminCount: async () =>
      (await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0"))!.n,
  };
}

export type UsersRepo = ReturnType<typeof createUsersRepo>;
