import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeCommand } from '../../src/commands/store.js';
import { openDatabase } from '../../src/store/database.js';
import { postgresSchemaVersion } from '../../src/store/postgres/migrate.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { connectPostgres, isUnreachable, redactUrl } from '../../src/store/postgres/pool.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import { numberPlaceholders } from '../../src/store/sql.js';
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.js';

describe('PostgreSQL migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshPostgresDatabase();
  });
  afterAll(() => db.drop());

  it('applies each component once, recorded apart, even when nodes start together', async () => {
    const a = connectPostgres(db.url);
    const b = connectPostgres(db.url);
    try {
      const [first, second] = await Promise.all([
        a.migrate('corral', POSTGRES_MIGRATIONS),
        b.migrate('corral', POSTGRES_MIGRATIONS),
      ]);
      expect([first, second].sort((x, y) => y.length - x.length)).toEqual([[1], []]);
      // Another module's tables: its own numbering, unaffected by the store's.
      const fleet = [
        { version: 1, name: 'nodes', sql: 'CREATE TABLE test_nodes (id TEXT PRIMARY KEY)' },
        { version: 2, name: 'heartbeat', sql: 'ALTER TABLE test_nodes ADD COLUMN seen_at BIGINT' },
      ];
      expect(await a.migrate('test-fleet', fleet.slice(0, 1))).toEqual([1]);
      expect(await b.migrate('test-fleet', fleet)).toEqual([2]);
      expect(await postgresSchemaVersion(a.pool, 'test-fleet')).toBe(2);
      expect(await postgresSchemaVersion(a.pool, 'corral')).toBe(POSTGRES_MIGRATIONS.at(-1)!.version);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('rolls back a failing migration and names it', async () => {
    const h = connectPostgres(db.url);
    try {
      const bad = [{ version: 1, name: 'half', sql: 'CREATE TABLE test_half (id INT); SELECT no_such_function()' }];
      await expect(h.migrate('test-broken', bad)).rejects.toThrow(/test-broken migration 1 \(half\) failed/);
      const { rows } = await h.query("SELECT to_regclass('test_half') AS t");
      expect(rows[0]).toEqual({ t: null });
      expect(await postgresSchemaVersion(h.pool, 'test-broken')).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('returns ids, times and counts as numbers', async () => {
    const store = await openPostgresStore(db.url);
    try {
      const at = Date.parse('2030-01-01T00:00:00Z');
      const id = await store.users.create('num', 'h', 'admin', at);
      expect(await store.users.findById(id)).toMatchObject({ id: expect.any(Number), created_at: at });
      expect(await store.users.adminCount()).toBe(1);
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL helpers', () => {
  it('numbers placeholders outside quoted text', () => {
    expect(numberPlaceholders(`SELECT '?', "a?" FROM t WHERE a = ? AND b = 'it''s?' AND c = ?`)).toBe(
      `SELECT '?', "a?" FROM t WHERE a = $1 AND b = 'it''s?' AND c = $2`,
    );
  });

  it('tells an unreachable server from a bad statement', () => {
    expect(isUnreachable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnreachable(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
    expect(isUnreachable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnreachable(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isUnreachable(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
  });

  it('never shows the password of a URL', () => {
    expect(redactUrl('postgres://corral:s3cret@db:5432/corral')).toBe('postgres://corral:***@db:5432/corral');
    expect(redactUrl('postgres://db/corral')).toBe('postgres://db/corral');
  });
});

describe('corral store migrate', () => {
  let dir: string;
  let db: TestDatabase;
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-migrate-'));
    db = await freshPostgresDatabase();
  });
  afterAll(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A single node's store with a little of everything. */
  async function seed(file: string) {
    const s = openDatabase(file);
    const now = Date.now();
    const user = await s.users.create('Alice', 'bcrypt-hash', 'admin', 1000);
    const token = await s.apiTokens.create({ name: 'ci', tokenHash: 'token-hash', role: 'viewer', tpd: 500 }, 2000);
    await s.sessions.create({ idHash: 'live', userId: user, expiresAt: now + 3600_000 }, now);
    await s.sessions.create({ idHash: 'ended', userId: user, expiresAt: now + 3600_000 }, now);
    await s.sessions.revoke('ended');
    await s.settings.getOrCreate('session_jwt_secret', () => 'jwt-secret');
    await s.auditLog.write({ actor: 'Alice', action: 'user.add', outcome: 'success' }, 3000);
    s.requestLog.write({ principal: 'ci', tokenId: token, model: 'm', endpoint: '/api/chat', status: 200, at: now });
    s.tokenUsage.add(token, 42, now);
    await s.alertHistory.open({ rule: 'r', subject: '', severity: 'info', summary: 's', startedAt: 5, notified: true });
    await s.conversations.create(`user:${user}`, { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    await s.close();
    return { user, token, now };
  }

  it('copies a single node into an empty PostgreSQL database, and refuses to copy into it twice', async () => {
    const file = join(dir, 'corral.db');
    const { user, token, now } = await seed(file);
    expect(await storeCommand(['migrate', '--from', file, '--to', db.url], io)).toBe(0);
    expect(lines.at(-1)).toMatch(/^copied \d+ rows from .* to postgres:\/\/postgres:\*\*\*@/);
    expect(lines.join('\n')).not.toContain(new URL(db.url).password);

    const pg = await openPostgresStore(db.url);
    try {
      expect(await pg.users.findByUsername('alice')).toMatchObject({ id: user, password_hash: 'bcrypt-hash' });
      expect(await pg.apiTokens.findByHash('token-hash')).toMatchObject({ id: token, name: 'ci', tpd: 500 });
      expect((await pg.sessions.activeForUser(user)).map((s) => s.id_hash)).toEqual(['live']);
      expect(await pg.sessions.get('ended')).toBeUndefined();
      expect(await pg.settings.get('session_jwt_secret')).toBe('jwt-secret');
      expect(await pg.tokenUsage.get(token, now)).toBe(42);
      expect((await pg.requestLog.recent()).map((r) => r.principal)).toEqual(['ci']);
      expect((await pg.alertHistory.firing()).map((e) => e.rule)).toEqual(['r']);
      expect((await pg.conversations.list(`user:${user}`)).length).toBe(1);
      expect((await pg.auditLog.recent()).map((r) => r.action)).toEqual(['store.migrate', 'user.add']);
      // New rows continue after the copied ids.
      expect(await pg.users.create('bob', 'h', 'viewer')).toBe(user + 1);
    } finally {
      await pg.close();
    }
    lines.length = 0;
    await expect(storeCommand(['migrate', '--from', file, '--to', db.url], io)).rejects.toThrow(
      /already has rows in users/,
    );
  });

  it('says what is wrong with its arguments', async () => {
    lines.length = 0;
    expect(await storeCommand(['migrate', '--from', join(dir, 'x.db')], io)).toBe(2);
    expect(await storeCommand(['migrate', '--from', join(dir, 'x.db'), '--to', 'mysql://db'], io)).toBe(2);
    expect(await storeCommand(['migrate', '--from', join(dir, 'missing.db'), '--to', db.url], io)).toBe(1);
    expect(lines.at(-1)).toContain('does not exist');
  });

  it('backs up only SQLite, pointing at pg_dump for PostgreSQL', async () => {
    lines.length = 0;
    expect(await storeCommand(['backup', join(dir, 'b.db'), '--db', db.url], io)).toBe(1);
    expect(lines.at(-1)).toContain('pg_dump');
  });
});
