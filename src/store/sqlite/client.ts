import type Database from 'better-sqlite3';
import type { SqlDb, Statement } from '../sql.js';

/**
 * The store's SQL over better-sqlite3. SQLite answers synchronously in this process, so each call
 * is a resolved promise; statements are prepared once and kept by their text.
 */
export function sqliteClient(db: Database.Database): SqlDb {
  const prepared = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let s = prepared.get(sql);
    if (!s) prepared.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const runBatch = db.transaction((statements: readonly Statement[]) =>
    statements.map((s) => prepare(s.sql).run(...s.params).changes),
  );
  // Each method is sync inside so that a failure becomes a rejected promise, never a throw.
  return {
    dialect: 'sqlite',
    all: async <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).all(...params) as T[],
    get: async <T>(sql: string, params: readonly unknown[] = []) => prepare(sql).get(...params) as T | undefined,
    run: async (sql, params = []) => prepare(sql).run(...params).changes,
    batch: async (statements) => runBatch(statements),
  };
}
