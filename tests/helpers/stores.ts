import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import type { Store } from '../../src/store/store.js';
import { freshPostgresDatabase, type TestDatabase } from './postgres.js';

export interface StoreOpenOptions {
  credentialCacheMs?: number;
  onWriteError?: (err: unknown) => void;
  /** The clock of the credential cache. */
  now?: () => number;
}

/**
 * One engine for a parameterized store test: every store open() returns until the next reset()
 * shares one database, as nodes (or a node and the CLI) do.
 */
export interface Engine {
  name: 'sqlite' | 'postgres';
  open(options?: StoreOpenOptions): Promise<Store>;
  /** Closes the stores opened so far and starts from an empty database. */
  reset(): Promise<void>;
  /** What the stores point at: a file path or a postgres:// URL. */
  location(): string;
  done(): Promise<void>;
}

function sqliteEngine(): Engine {
  const dir = mkdtempSync(join(tmpdir(), 'corral-store-'));
  let n = 0;
  let opened: Store[] = [];
  const path = () => join(dir, `corral-${n}.db`);
  return {
    name: 'sqlite',
    async open(options = {}) {
      const store = openDatabase(path(), options);
      opened.push(store);
      return store;
    },
    async reset() {
      await Promise.all(opened.map((s) => s.close()));
      opened = [];
      n++;
    },
    location: path,
    async done() {
      await this.reset();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresEngine(): Engine {
  let db: TestDatabase | undefined;
  let opened: Store[] = [];
  const database = async () => (db ??= await freshPostgresDatabase());
  return {
    name: 'postgres',
    async open(options = {}) {
      const store = await openPostgresStore((await database()).url, options);
      opened.push(store);
      return store;
    },
    async reset() {
      await Promise.all(opened.map((s) => s.close()));
      opened = [];
      if (db) await truncateAll(db.url);
    },
    location: () => db?.url ?? '(no database yet)',
    async done() {
      await Promise.all(opened.map((s) => s.close()));
      await db?.drop();
    },
  };
}

/** Empties every table but the migration record: cheaper than a new database for each test. */
async function truncateAll(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ t: string }>(
      "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'",
    );
    if (rows.length) await client.query(`TRUNCATE ${rows.map((r) => r.t).join(', ')} RESTART IDENTITY CASCADE`);
  } finally {
    await client.end();
  }
}

/** Both engines, for describe.each: SQLite (the default) and PostgreSQL (the run's server). */
export const ENGINES: { name: Engine['name']; make: () => Engine }[] = [
  { name: 'sqlite', make: sqliteEngine },
  { name: 'postgres', make: postgresEngine },
];

/**
 * The hooks of a describe.each over ENGINES: one database for the describe, emptied after each
 * test. `open` opens a store on it (several are several processes sharing it).
 */
export function useEngine(make: () => Engine): { engine(): Engine; open(options?: StoreOpenOptions): Promise<Store> } {
  let engine: Engine;
  beforeAll(() => {
    engine = make();
  });
  afterEach(() => engine.reset());
  afterAll(() => engine.done());
  return { engine: () => engine, open: (options) => engine.open(options) };
}
