import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { MIGRATIONS, migrate, schemaVersion } from '../../src/store/migrations.js';
import { pruneLogs } from '../../src/store/retention.js';

describe('store', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-store-'));
    path = join(dir, 'nested', 'corral.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates an empty database to the latest schema in WAL mode', () => {
    const store = openDatabase(path);
    expect(schemaVersion(store.db)).toBe(MIGRATIONS.at(-1)!.version);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(Number(store.db.pragma('busy_timeout', { simple: true }))).toBeGreaterThan(0);
    store.close();
    // Re-opening applies nothing twice.
    const again = openDatabase(path);
    expect(migrate(again.db)).toEqual([]);
    again.close();
  });

  it('migrates a database from a previous schema, keeping its data', () => {
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
    expect(store.users.findByUsername('A')?.role).toBe('admin');
    expect(store.apiTokens.findByHash('abc')).toMatchObject({ name: 't', tpd: null });
    // The latest migration's column exists and takes writes.
    store.requestLog.write({ principal: 'a', endpoint: '/api/chat', status: 200, requestId: 'req-1' });
    store.requestLog.flush();
    expect(store.requestLog.recent()[0]?.request_id).toBe('req-1');
    store.auditLog.write({ actor: 'a', action: 'x', outcome: 'success' });
    store.close();
  });

  it('buffers request log rows off the response path and commits them together', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = openDatabase(path);
      const committed = () => (store.db.prepare('SELECT count(*) AS n FROM request_log').get() as { n: number }).n;
      store.requestLog.write({ principal: 'loopback', model: 'a', endpoint: '/api/chat', status: 200, evalTokens: 5 });
      store.requestLog.write({ principal: 'loopback', model: 'b', endpoint: '/api/generate', status: 500 });
      expect(store.writes.pending).toBe(2);
      expect(committed()).toBe(0);
      vi.advanceTimersByTime(99);
      expect(committed()).toBe(0);
      vi.advanceTimersByTime(1);
      expect(store.writes.pending).toBe(0);
      expect(committed()).toBe(2);
      expect(store.requestLog.recent().map((r) => r.model)).toEqual(['b', 'a']);
      expect(store.requestLog.recent({ model: 'a' })).toMatchObject([{ eval_tokens: 5, status: 200 }]);
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('shows queued rows to readers at once', () => {
    const store = openDatabase(path);
    store.requestLog.write({ principal: 'loopback', model: 'a', endpoint: '/api/chat', status: 200 });
    const token = store.apiTokens.create({ name: 't', tokenHash: 'h', role: 'viewer' });
    store.tokenUsage.add(token, 7);
    expect(store.writes.pending).toBe(2);
    expect(store.requestLog.recent().map((r) => r.model)).toEqual(['a']);
    store.tokenUsage.add(token, 5);
    expect(store.tokenUsage.get(token)).toBe(12);
    store.close();
  });

  it('keeps a failing deferred write from losing the others', () => {
    const errors: unknown[] = [];
    const store = openDatabase(path, { onWriteError: (e) => errors.push(e) });
    store.requestLog.write({ principal: 'p', endpoint: '/x', status: 200 });
    store.writes.enqueue(() => store.db.prepare('INSERT INTO nope VALUES (1)').run());
    store.requestLog.write({ principal: 'p', endpoint: '/y', status: 200 });
    store.flush();
    expect(errors).toHaveLength(1);
    expect(store.requestLog.recent()).toHaveLength(2);
    store.close();
  });

  it('prunes logs past their retention', () => {
    const store = openDatabase(path);
    const day = 86_400_000;
    const now = Date.parse('2025-06-01T00:00:00Z');
    store.requestLog.write({ principal: 'p', endpoint: '/old', status: 200, at: now - 31 * day });
    store.requestLog.write({ principal: 'p', endpoint: '/new', status: 200, at: now - day });
    store.auditLog.write({ actor: 'a', action: 'old', outcome: 'success' }, now - 400 * day);
    store.auditLog.write({ actor: 'a', action: 'new', outcome: 'success' }, now - day);
    const pruned = pruneLogs(store, { path, request_log_retention: '30d', audit_log_retention: '365d' }, now);
    expect(pruned).toMatchObject({ requestLog: 1, auditLog: 1 });
    expect(store.requestLog.recent().map((r) => r.endpoint)).toEqual(['/new']);
    expect(store.auditLog.recent().map((r) => r.action)).toEqual(['new']);
    store.close();
  });

  it('lets two connections write the same file concurrently', async () => {
    const a = openDatabase(path);
    const b = openDatabase(path);
    expect(a.settings.getOrCreate('k', () => 'from-a')).toBe('from-a');
    expect(b.settings.getOrCreate('k', () => 'from-b')).toBe('from-a');
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        Promise.resolve().then(() => {
          const s = i % 2 ? a : b;
          s.requestLog.write({ principal: `p${i}`, endpoint: '/api/chat', status: 200 });
          s.auditLog.write({ actor: `p${i}`, action: 'x', outcome: 'success' });
        }),
      ),
    );
    a.flush();
    b.flush();
    expect(a.requestLog.recent({ limit: 1000 })).toHaveLength(200);
    expect(b.auditLog.recent({ limit: 1000 })).toHaveLength(200);
    a.close();
    b.close();
  });
});
