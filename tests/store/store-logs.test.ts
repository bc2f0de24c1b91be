import { describe, expect, it } from 'vitest';
import { pruneLogs } from '../../src/store/retention.js';
import type { Store } from '../../src/store/store.js';
import { ENGINES, useEngine } from '../helpers/stores.js';

/** Logs, history and conversations: the same behaviour on SQLite and on PostgreSQL. */
describe.each(ENGINES)('store on $name: logs, alert history, conversations', ({ make }) => {
  const { engine: current, open: openStore } = useEngine(make);
  let store: Store;
  const open = async (o = {}) => (store = await openStore(o));
  const day = 86_400_000;
  const now = Date.parse('2025-06-01T00:00:00Z');

  it('writes request log rows off the response path and shows them to readers at once', async () => {
    await open();
    store.requestLog.write({ principal: 'p', model: 'a', endpoint: '/api/chat', status: 200, evalTokens: 5, at: 1 });
    store.requestLog.write({ principal: 'p', model: 'b', endpoint: '/api/generate', status: 500, requestId: 'r-2' });
    expect(store.writes.pending).toBe(2);
    expect((await store.requestLog.recent()).map((r) => r.model)).toEqual(['b', 'a']);
    expect(store.writes.pending).toBe(0);
    expect(await store.requestLog.recent({ model: 'a' })).toMatchObject([{ eval_tokens: 5, status: 200, at: 1 }]);
    expect(await store.requestLog.recent({ since: 2 })).toMatchObject([{ request_id: 'r-2' }]);
    expect(await store.requestLog.recent({ limit: 1 })).toHaveLength(1);
  });

  it('reads a period of the request log page by page', async () => {
    await open();
    for (let i = 0; i < 25; i++) {
      const model = i % 5 === 0 ? null : `m${i % 2}`;
      store.requestLog.write({ principal: 'p', model, endpoint: '/api/chat', status: 200, at: 1000 + i, ttftMs: i });
    }
    await store.flush();
    const pages: number[][] = [];
    for await (const page of store.requestLog.pages(1005, 1020)) pages.push(page.map((r) => r.ttft_ms!));
    expect(pages.flat()).toEqual([6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19]);
  });

  it('keeps a failing deferred write from losing the others', async () => {
    const errors: unknown[] = [];
    await open({ onWriteError: (e: unknown) => errors.push(e) });
    store.requestLog.write({ principal: 'p', endpoint: '/x', status: 200 });
    store.writes.enqueue({ sql: 'INSERT INTO nope VALUES (1)', params: [] });
    store.requestLog.write({ principal: 'p', endpoint: '/y', status: 200 });
    await store.flush();
    expect(errors).toHaveLength(1);
    expect(await store.requestLog.recent()).toHaveLength(2);
  });

  it('writes the audit log at once and filters it', async () => {
    await open();
    await store.auditLog.write({ actor: 'a', action: 'user.add', target: 'x', outcome: 'success', ip: '::1' }, 10);
    await store.auditLog.write({ actor: 'b', action: 'user.add', outcome: 'failure' }, 20);
    await store.auditLog.write({ actor: 'a', action: 'token.create', outcome: 'success' }, 30);
    expect((await store.auditLog.recent()).map((r) => r.at)).toEqual([30, 20, 10]);
    expect(await store.auditLog.recent({ actor: 'a', action: 'user.add' })).toMatchObject([{ target: 'x', ip: '::1' }]);
    expect(await store.auditLog.recent({ action: 'user.add', limit: 1 })).toMatchObject([{ actor: 'b' }]);
  });

  it('prunes logs past their retention', async () => {
    await open();
    store.requestLog.write({ principal: 'p', endpoint: '/old', status: 200, at: now - 31 * day });
    store.requestLog.write({ principal: 'p', endpoint: '/new', status: 200, at: now - day });
    await store.auditLog.write({ actor: 'a', action: 'old', outcome: 'success' }, now - 400 * day);
    await store.auditLog.write({ actor: 'a', action: 'new', outcome: 'success' }, now - day);
    const old = await store.alertHistory.open({
      rule: 'r',
      subject: '',
      severity: 'info',
      summary: 's',
      startedAt: now - 400 * day,
      notified: false,
    });
    await store.alertHistory.resolve(old.id, now - 399 * day);
    const retention = { request_log_retention: '30d', audit_log_retention: '365d' };
    const pruned = await pruneLogs(store, { path: '', url: '', pool_size: 1, ...retention }, now);
    expect(pruned).toMatchObject({ requestLog: 1, auditLog: 1, alertHistory: 1 });
    expect((await store.requestLog.recent()).map((r) => r.endpoint)).toEqual(['/new']);
    expect((await store.auditLog.recent()).map((r) => r.action)).toEqual(['new']);
  });

  it('records alert episodes: open, resolved, and when one last notified', async () => {
    await open();
    const e = { rule: 'disk', subject: '/data', severity: 'warning' as const, summary: 'low' };
    const a = await store.alertHistory.open({ ...e, startedAt: 100, notified: true });
    const b = await store.alertHistory.open({ ...e, subject: '/models', startedAt: 200, notified: false });
    expect((await store.alertHistory.firing()).map((x) => x.id)).toEqual([a.id, b.id]);
    await store.alertHistory.resolve(a.id, 300);
    await store.alertHistory.resolve(a.id, 400);
    expect((await store.alertHistory.firing()).map((x) => x.id)).toEqual([b.id]);
    expect(await store.alertHistory.recent(1)).toMatchObject([{ id: b.id, resolvedAt: undefined, notified: false }]);
    expect((await store.alertHistory.recent())[1]).toMatchObject({ resolvedAt: 300, notified: true });
    expect(await store.alertHistory.lastNotifiedAt('disk', '/data')).toBe(100);
    expect(await store.alertHistory.lastNotifiedAt('disk', '/models')).toBeUndefined();
  });

  it('keeps conversations per owner, replacing messages as a whole', async () => {
    await open();
    const c = await store.conversations.create('user:1', {
      model: 'm',
      options: { temperature: 0.2 },
      messages: [
        { role: 'user', content: 'hi', images: ['aW1n'] },
        { role: 'assistant', content: 'hello' },
      ],
    });
    expect(c).toMatchObject({ title: 'New conversation', system: '', options: { temperature: 0.2 } });
    expect(c.messages).toEqual([
      { role: 'user', content: 'hi', images: ['aW1n'] },
      { role: 'assistant', content: 'hello' },
    ]);
    expect(await store.conversations.get('user:2', c.id)).toBeUndefined();
    // PostgreSQL's text holds no NUL character: such a message is kept without it there, not refused.
    const nul = await store.conversations.create('user:1', {
      model: 'm',
      messages: [{ role: 'user', content: 'a\0b' }],
    });
    expect(nul.messages[0]!.content.replace('\0', '')).toBe('ab');
    await store.conversations.remove('user:1', nul.id);
    expect(await store.conversations.update('user:2', c.id, { title: 'x' })).toBeUndefined();
    const u = await store.conversations.update('user:1', c.id, { title: 'Renamed', messages: [] });
    expect(u).toMatchObject({ title: 'Renamed', model: 'm', messages: [] });
    expect((await store.conversations.list('user:1')).map((x) => x.title)).toEqual(['Renamed']);
    expect(await store.conversations.list('user:2')).toEqual([]);
    expect(await store.conversations.remove('user:2', c.id)).toBe(false);
    expect(await store.conversations.remove('user:1', c.id)).toBe(true);
    expect(await store.conversations.get('user:1', c.id)).toBeUndefined();
  });

  it('lets two processes write concurrently without losing a row', async () => {
    const a = await open();
    const b = await current().open();
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const s = i % 2 ? a : b;
        s.requestLog.write({ principal: `p${i}`, endpoint: '/api/chat', status: 200 });
        await s.auditLog.write({ actor: `p${i}`, action: 'x', outcome: 'success' });
      }),
    );
    await Promise.all([a.flush(), b.flush()]);
    expect(await a.requestLog.recent({ limit: 1000 })).toHaveLength(200);
    expect(await b.auditLog.recent({ limit: 1000 })).toHaveLength(200);
  });
});
