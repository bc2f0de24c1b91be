import Database from 'better-sqlite3';
import type pg from 'pg';
import { migrate } from './migrations.js';
import { POSTGRES_MIGRATIONS } from './postgres/migrations.js';
import { withoutNul } from './postgres/client.js';
import type { PostgresHandle } from './postgres/pool.js';

/** A table copied from SQLite to PostgreSQL, and which of its rows. */
interface CopiedTable {
  name: string;
  /** A WHERE clause on the SQLite side (`?` = now), for rows worth carrying over. */
  where?: string;
  /** Whose BIGINT identity sequence must continue after the copied ids. */
  identity?: boolean;
}

/**
 * In foreign-key order. Sessions still valid are copied with the settings that sign them, so nobody
 * is logged out by the move; one-time setup links are not (a new start prints a new one if needed).
 */
const TABLES: readonly CopiedTable[] = [
  { name: 'users', identity: true },
  { name: 'api_tokens', identity: true },
  { name: 'sessions', where: 'revoked_at IS NULL AND expires_at > ?' },
  { name: 'settings' },
  { name: 'token_usage' },
  { name: 'audit_log', identity: true },
  { name: 'request_log', identity: true },
  { name: 'alert_history', identity: true },
  { name: 'conversations' },
  { name: 'conversation_messages' },
];

/** PostgreSQL takes at most 65535 parameters per statement; the widest table has 15 columns. */
const ROWS_PER_INSERT = 1000;

export interface CopyResult {
  table: string;
  rows: number;
}

/**
 * Copies a SQLite store (upgraded to the current schema first, as a start of Corral would) into a
 * PostgreSQL database, all in one transaction: the target ends up with everything or nothing. The
 * target must hold no Corral data yet, so nothing is merged or overwritten by mistake.
 */
export async function copySqliteToPostgres(
  sqlitePath: string,
  target: PostgresHandle,
  progress: (line: string) => void = () => {},
  now = Date.now(),
): Promise<CopyResult[]> {
  const source = new Database(sqlitePath, { fileMustExist: true });
  try {
    source.pragma('busy_timeout = 5000');
    migrate(source);
    await target.migrate('corral', POSTGRES_MIGRATIONS);
    return await target.transaction(async (client) => {
      await refuseUnlessEmpty(client);
      const results: CopyResult[] = [];
      for (const table of TABLES) {
        const rows = await copyTable(source, client, table, now);
        progress(`${table.name}: ${rows} rows`);
        results.push({ table: table.name, rows });
      }
      await client.query(
        `INSERT INTO audit_log (at, actor, action, target, outcome) VALUES ($1, 'cli', 'store.migrate', $2, 'success')`,
        [now, `from ${sqlitePath}`],
      );
      return results;
    });
  } finally {
    source.close();
  }
}

async function refuseUnlessEmpty(client: pg.PoolClient): Promise<void> {
  for (const { name } of TABLES) {
    const { rows } = await client.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${name}) AS any`);
    if (rows[0]!.any)
      throw new Error(`the target database already has rows in ${name}: copy into a database without Corral data`);
  }
}

async function copyTable(source: Database.Database, client: pg.PoolClient, table: CopiedTable, now: number) {
  const columns = (source.pragma(`table_info(${table.name})`) as { name: string }[]).map((c) => c.name);
  const select = source.prepare(
    `SELECT ${columns.join(', ')} FROM ${table.name} ${table.where ? `WHERE ${table.where}` : ''}`,
  );
  const rows = table.where ? select.raw().iterate(now) : select.raw().iterate();
  let batch: unknown[][] = [];
  let copied = 0;
  const insert = async () => {
    const values = batch.map((_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
    const sql = `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES ${values.join(', ')}`;
    await client.query(sql, withoutNul(batch.flat()));
    copied += batch.length;
    batch = [];
  };
  for (const row of rows as Iterable<unknown[]>) {
    batch.push(row);
    if (batch.length === ROWS_PER_INSERT) await insert();
  }
  if (batch.length) await insert();
  if (table.identity) {
    // Rows inserted with their ids leave the identity sequence behind: new rows continue after them.
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, 'id'), COALESCE((SELECT MAX(id) FROM ${table.name}), 0) + 1, false)`,
      [table.name],
    );
  }
  return copied;
}
