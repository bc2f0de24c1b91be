import type Database from 'better-sqlite3';
import type { Role } from '../auth/principal.js';

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

export function createUsersRepo(db: Database.Database) {
  const byName = db.prepare('SELECT * FROM users WHERE username = ?');
  const byId = db.prepare('SELECT * FROM users WHERE id = ?');
  const insert = db.prepare(
    'INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
  );
  const setHash = db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?');
  const setRole = db.prepare('UPDATE users SET role = ?, updated_at = ? WHERE id = ?');
  const del = db.prepare('DELETE FROM users WHERE id = ?');
  const setDisabled = db.prepare('UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?');
  const all = db.prepare('SELECT id, username, role, created_at, updated_at, disabled FROM users ORDER BY username');
  const admins = db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0");

  return {
    /** The caller hashes: the store never sees a clear password. */
    create(username: string, passwordHash: string, role: Role, now = Date.now()): number {
      return Number(insert.run(username, passwordHash, role, now, now).lastInsertRowid);
    },
    findByUsername: (username: string) => byName.get(username) as UserRow | undefined,
    findById: (id: number) => byId.get(id) as UserRow | undefined,
    setPasswordHash: (id: number, hash: string, now = Date.now()) => setHash.run(hash, now, id).changes > 0,
    setRole: (id: number, role: Role, now = Date.now()) => setRole.run(role, now, id).changes > 0,
    delete: (id: number) => del.run(id).changes > 0,
    setDisabled: (id: number, disabled: boolean, now = Date.now()) =>
      setDisabled.run(disabled ? 1 : 0, now, id).changes > 0,
    list: () => all.all() as PublicUser[],
    adminCount: () => (admins.get() as { n: number }).n,
  };
}

export type UsersRepo = ReturnType<typeof createUsersRepo>;
