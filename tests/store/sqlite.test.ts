import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { MIGRATIONS, migrate, schemaVersion } from '../../src/store/migrations.js';

describe('the SQLite store', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-store-'));
    path = join(dir, 'nested', 'corral.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates an empty database to the latest schema in WAL mode', async () => {
    const store = openDatabase(path);
    expect(schemaVersion(store.db)).toBe(MIGRATIONS.at(-1)!.version);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(Number(store.db.pragma('busy_timeout', { simple: true }))).toBeGreaterThan(0);
    await store.close();
    // Re-opening applies nothing twice.
    const again = openDatabase(path);
    expect(migrate(again.db)).toEqual([]);
    await again.close();
  });

  it('migrates a database from a previous schema, keeping its data', async () => {
    const old = new Database(path.replace('nested/', ''));
    migrate(
      old,
      MIGRATIONS.filter((m) => m.version === 1),
    );
    old
      .prepare(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES ('a', 'h', 'admin', 1, 1)",
      )
      .run();
    old.prepare("INSERT INTO api_tokens (name, token_hash, role, created_at) VALUES ('t', 'abc', 'viewer', 1)").run();
    old.close();
    const store = openDatabase(path.replace('nested/', ''));
    expect(schemaVersion(store.db)).toBe(MIGRATIONS.at(-1)!.version);
    expect((await store.users.findByUsername('A'))?.role).toBe('admin');
    expect(await store.apiTokens.findByHash('abc')).toMatchObject({ name: 't', tpd: null });
    // The latest migration's column exists and takes writes.
    store.requestLog.write({ principal: 'a', endpoint: '/api/chat', status: 200, requestId: 'req-1', queueWaitMs: 3 });
    expect((await store.requestLog.recent())[0]).toMatchObject({ request_id: 'req-1', queue_wait_ms: 3 });
    await store.close();
  });

  it('commits buffered rows together once the delay is over', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = openDatabase(path);
      const committed = () => (store.db.prepare('SELECT count(*) AS n FROM request_log').get() as { n: number }).n;
      store.requestLog.write({ principal: 'loopback', model: 'a', endpoint: '/api/chat', status: 200 });
      store.requestLog.write({ principal: 'loopback', model: 'b', endpoint: '/api/generate', status: 500 });
      expect(store.writes.pending).toBe(2);
      vi.advanceTimersByTime(99);
      expect(committed()).toBe(0);
      vi.advanceTimersByTime(1);
      await vi.waitFor(() => expect(committed()).toBe(2));
      expect(store.writes.pending).toBe(0);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('folds repeated last-used stamps of one token into one write', async () => {
    const store = openDatabase(path);
    const id = await store.apiTokens.create({ name: 't', tokenHash: 'h', role: 'viewer' });
    for (let t = 1; t <= 50; t++) store.apiTokens.touch(id, t);
    expect(store.writes.pending).toBe(1);
    expect((await store.apiTokens.list())[0]?.last_used_at).toBe(50);
    await store.close();
  });
});
