import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The run's PostgreSQL server (tests/setup/global-setup.ts); throws with the reason when there is none. */
export function postgresAdminUrl(): string {
  const fixture = inject('postgres');
  if (!fixture.adminUrl) throw new Error(`PostgreSQL is not available for this test run: ${fixture.error}`);
  return fixture.adminUrl;
}

async function asAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresAdminUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  url: string;
  /** Drops the database, cutting any connection still open to it. */
  drop(): Promise<void>;
}

/** A new, empty database on the run's server, so each test file starts from nothing. */
export async function freshPostgresDatabase(): Promise<TestDatabase> {
  const name = `corral_test_${randomBytes(6).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
