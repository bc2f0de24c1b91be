import type pg from 'pg';

export interface PostgresMigration {
  version: number;
  name: string;
  /** One or more statements, run in one transaction. */
  sql: string;
}

/** Any fixed number: every Corral process migrating this database takes the same lock. */
const MIGRATION_LOCK = 0x636f7272; // "corr"

/**
 * Applies `component`'s migrations newer than its recorded version, in order, each in its own
 * transaction. Each component ("corral" for the store, others for modules with tables of their own)
 * numbers its migrations from 1 and is recorded apart in schema_migrations, so modules add tables
 * without touching each other's lists. Nodes that start together take turns on an advisory lock:
 * the first migrates, the others find nothing left to do.
 *
 * Append-only, as for SQLite: a released migration is never edited, because databases in the field
 * have recorded its version as applied. Change the schema by adding a new entry.
 */
export async function migratePostgres(
  pool: pg.Pool,
  component: string,
  migrations: readonly PostgresMigration[],
  now = Date.now(),
): Promise<number[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      return await applyNewer(client, component, migrations, now);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch((err: Error) => (broken = err));
    }
  } finally {
    client.release(broken);
  }
}

async function applyNewer(
  client: pg.PoolClient,
  component: string,
  migrations: readonly PostgresMigration[],
  now: number,
): Promise<number[]> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (component, version))`);
  const { rows } = await client.query<{ v: number }>(
    'SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations WHERE component = $1',
    [component],
  );
  const current = rows[0]!.v;
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    try {
      await client.query('BEGIN');
      await client.query(m.sql);
      await client.query(
        'INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)',
        [component, m.version, m.name, now],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw Object.assign(
        new Error(`${component} migration ${m.version} (${m.name}) failed: ${(err as Error).message}`),
        {
          cause: err,
          code: (err as { code?: string }).code,
        },
      );
    }
    applied.push(m.version);
  }
  return applied;
}

/** The latest applied version of `component` (0 when none). */
export async function postgresSchemaVersion(pool: pg.Pool, component: string): Promise<number> {
  const { rows } = await pool.query<{ v: number }>(
    'SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations WHERE component = $1',
    [component],
  );
  return rows[0]!.v;
}
