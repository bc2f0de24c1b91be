import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { ENGINES, useEngine } from '../helpers/stores.js';

/** Identities and limits: the same behaviour on SQLite and on PostgreSQL. */
describe.each(ENGINES)('store on $name: users, tokens, sessions, settings, limits', ({ name, make }) => {
  const { engine: current, open: openStore } = useEngine(make);
  let store: Store;
  const open = async (o = {}) => (store = await openStore(o));

  it('keeps users, finds them by name without case, and refuses a second user of the same name', async () => {
    await open();
    const id = await store.users.create('Alice', 'hash-a', 'admin', 1000);
    await store.users.create('bob', 'hash-b', 'viewer', 1000);
    expect(await store.users.findByUsername('ALICE')).toMatchObject({ id, username: 'Alice', role: 'admin' });
    await expect(store.users.create('alice', 'x', 'viewer')).rejects.toThrow();
    expect((await store.users.list()).map((u) => u.username)).toEqual(['Alice', 'bob']);
    expect(await store.users.adminCount()).toBe(1);
    expect(await store.users.setDisabled(id, true, 2000)).toBe(true);
    expect(await store.users.adminCount()).toBe(0);
    expect(await store.users.findById(id)).toMatchObject({ disabled: 1, updated_at: 2000 });
  });

  it('deletes a user with their sessions', async () => {
    await open();
    const id = await store.users.create('carol', 'h', 'viewer');
    await store.sessions.create({ idHash: 's1', userId: id, expiresAt: Date.now() + 60_000 });
    expect(await store.users.delete(id)).toBe(true);
    expect(await store.users.delete(id)).toBe(false);
    expect(await store.sessions.activeForUser(id)).toEqual([]);
  });

  it('finds tokens by hash and id, lists them without the hash, and stamps last use later', async () => {
    await open();
    const id = await store.apiTokens.create(
      { name: 'ci', tokenHash: 'abc', role: 'operator', models: ['a', 'b'], rpm: 5, tpd: 1000, prefix: 'corral_x' },
      1000,
    );
    expect(await store.apiTokens.findByHash('abc')).toMatchObject({ id, name: 'ci', rpm: 5, tpd: 1000 });
    expect(await store.apiTokens.findById(id)).toMatchObject({ token_hash: 'abc', models: '["a","b"]' });
    expect(await store.apiTokens.findByHash('nope')).toBeUndefined();
    store.apiTokens.touch(id, 5000);
    const [info] = await store.apiTokens.list();
    expect(info).toMatchObject({ id, models: ['a', 'b'], last_used_at: 5000, created_at: 1000 });
    expect(info).not.toHaveProperty('token_hash');
  });

  it('sees a revocation made here at once, and one made by another process after the cache time', async () => {
    let t = 0;
    await open({ credentialCacheMs: 1000, now: () => t });
    const other = await current().open();
    const id = await store.apiTokens.create({ name: 't', tokenHash: 'h1', role: 'viewer' });
    const id2 = await store.apiTokens.create({ name: 't2', tokenHash: 'h2', role: 'viewer' });
    expect((await store.apiTokens.findByHash('h1'))?.revoked_at).toBeNull();
    expect(await store.apiTokens.revoke(id, 7)).toBe(true);
    expect(await store.apiTokens.revoke(id, 8)).toBe(false);
    expect((await store.apiTokens.findByHash('h1'))?.revoked_at).toBe(7);
    // Another node revokes: within the cache time this one still has its copy.
    expect((await store.apiTokens.findByHash('h2'))?.revoked_at).toBeNull();
    await other.apiTokens.revoke(id2, 9);
    t += 999;
    expect((await store.apiTokens.findByHash('h2'))?.revoked_at).toBeNull();
    t += 1;
    expect((await store.apiTokens.findByHash('h2'))?.revoked_at).toBe(9);
  });

  it('keeps sessions: the last-seen stamp only moves forward, revocations end them', async () => {
    await open();
    const user = await store.users.create('dave', 'h', 'viewer');
    const other = await store.users.create('erin', 'h', 'viewer');
    const expiresAt = Date.now() + 3600_000;
    await store.sessions.create({ idHash: 'a', userId: user, expiresAt, ip: '127.0.0.1', userAgent: 'ua' }, 100);
    await store.sessions.create({ idHash: 'b', userId: user, expiresAt }, 200);
    await store.sessions.create({ idHash: 'c', userId: other, expiresAt }, 300);
    store.sessions.touch('a', 500);
    store.sessions.touch('a', 400);
    await store.flush();
    const fresh = await current().open({ credentialCacheMs: 0 });
    expect(await fresh.sessions.get('a')).toMatchObject({ user_id: user, last_seen_at: 500, ip: '127.0.0.1' });
    expect(await store.sessions.revoke('a', 600)).toBe(true);
    expect((await store.sessions.get('a'))?.revoked_at).toBe(600);
    expect(await store.sessions.revokeAllForUser(user, 700)).toBe(1);
    expect((await store.sessions.activeForUser(other)).map((s) => s.id_hash)).toEqual(['c']);
    expect(await store.sessions.pruneBefore(Date.now())).toBe(2);
  });

  it('keeps settings, and the first of two processes to create one wins', async () => {
    await open();
    const other = await current().open();
    expect(await store.settings.get('k')).toBeUndefined();
    await store.settings.set('k', 'v1');
    await store.settings.set('k', 'v2');
    expect(await other.settings.get('k')).toBe('v2');
    const made = await Promise.all([
      store.settings.getOrCreate('secret', () => 'from-a'),
      other.settings.getOrCreate('secret', () => 'from-b'),
    ]);
    expect(new Set(made).size).toBe(1);
  });

  it('accepts a setup token once, and only the latest one', async () => {
    await open();
    await store.setupTokens.create('old', 10_000, 0);
    await store.setupTokens.create('new', 10_000, 1);
    expect(await store.setupTokens.consume('old', 2)).toBe(false);
    expect(await store.setupTokens.consume('new', 2)).toBe(true);
    expect(await store.setupTokens.consume('new', 3)).toBe(false);
    await store.setupTokens.create('late', 10, 4);
    expect(await store.setupTokens.consume('late', 11)).toBe(false);
  });

  it('counts token usage from several processes exactly', async () => {
    await open();
    const other = await current().open();
    const id = await store.apiTokens.create({ name: 't', tokenHash: 'h', role: 'viewer', tpd: 100 });
    const day = Date.parse('2025-06-01T12:00:00Z');
    for (let i = 0; i < 50; i++) (i % 2 ? store : other).tokenUsage.add(id, 3, day);
    other.tokenUsage.add(id, 1000, day + 86_400_000);
    await Promise.all([store.flush(), other.flush()]);
    expect(await store.tokenUsage.get(id, day)).toBe(150);
    expect(await other.tokenUsage.get(id, day + 86_400_000)).toBe(1000);
    expect(await store.tokenUsage.pruneBefore(day + 86_400_000)).toBe(1);
  });

  it('limits requests per window with a bucket that refills', async () => {
    await open();
    let t = 1_000_000;
    const limiter = store.rateLimits.limiter(() => t);
    const takes = async (n: number) => {
      const waits: number[] = [];
      for (let i = 0; i < n; i++) waits.push(await limiter.take('k', 3, 60_000));
      return waits;
    };
    expect((await takes(4)).map((w) => w > 0)).toEqual([false, false, false, true]);
    expect(await limiter.take('k', 3, 60_000)).toBeCloseTo(20, 0);
    t += 20_000;
    expect(await takes(2)).toEqual([0, expect.any(Number)]);
  });

  it('shares rate-limit buckets between processes on PostgreSQL, spending each request once', async () => {
    await open();
    const other = await current().open();
    const t = () => 5_000_000;
    const [a, b] = [store.rateLimits.limiter(t), other.rateLimits.limiter(t)];
    const waits = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).take('shared', 10, 60_000)));
    const allowed = waits.filter((w) => w === 0).length;
    // SQLite serves one node: each process keeps its own buckets in memory.
    expect(allowed).toBe(name === 'postgres' ? 10 : 20);
  });
});
