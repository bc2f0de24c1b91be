import { numberPlaceholders, type SqlDb } from '../sql.js';
import type { PostgresHandle } from './pool.js';

/**
 * The store's SQL over a PostgreSQL pool. Each distinct statement gets a name, so every connection
 * parses and plans it once (a named prepared statement) however often it runs.
 */
/**
 * PostgreSQL's text cannot hold NUL characters, which SQLite stores: a chat message or a name with
 * one is kept without it rather than refused.
 */
export const withoutNul = (params: readonly unknown[]): unknown[] =>
  params.map((v) => (typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '') : v));

export function postgresClient(pg: PostgresHandle): SqlDb {
  const named = new Map<string, { name: string; text: string }>();
  const prepared = (sql: string) => {
    let p = named.get(sql);
    if (!p) named.set(sql, (p = { name: `corral_${named.size + 1}`, text: numberPlaceholders(sql) }));
    return p;
  };
  const query = (sql: string, params: readonly unknown[]) => {
    const p = prepared(sql);
    return pg.query(p.text, withoutNul(params), p.name);
  };
  return {
    dialect: 'postgres',
    all: async <T>(sql: string, params: readonly unknown[] = []) => (await query(sql, params)).rows as T[],
    get: async <T>(sql: string, params: readonly unknown[] = []) => (await query(sql, params)).rows[0] as T | undefined,
    run: async (sql, params = []) => (await query(sql, params)).rowCount ?? 0,
    batch: (statements) =>
      pg.transaction(async (client) => {
        const changed: number[] = [];
        for (const s of statements) {
          const p = prepared(s.sql);
          changed.push(
            (await client.query({ name: p.name, text: p.text, values: withoutNul(s.params) })).rowCount ?? 0,
          );
        }
        return changed;
      }),
  };
}
