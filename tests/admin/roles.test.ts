import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form, loginAs, type Session } from './helpers.js';

let t: TestGateway;
const sessions = {} as Record<'viewer' | 'operator' | 'admin', Session>;
const fixtures = inject('fixtures');

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
  for (const role of ['viewer', 'operator', 'admin'] as const) sessions[role] = await loginAs(t, role);
  const at = Date.now() - 30_000;
  const row = { tokenId: null, userId: null, endpoint: '/api/chat', loadMs: null, requestId: 'r1' };
  t.gw.store.requestLog.write({
    ...row,
    principal: '<b>token</b>',
    model: 'tiny:latest',
    status: 200,
    promptTokens: 10,
    evalTokens: 20,
    ttftMs: 12.4,
    totalMs: 12.4 + (20 / 55.5) * 1000,
    at,
  });
  t.gw.store.requestLog.write({
    ...row,
    principal: 'ann',
    model: 'tiny:latest',
    status: 500,
    promptTokens: null,
    evalTokens: null,
    ttftMs: null,
    totalMs: 90,
    at: at - 5 * 60_000,
  });
  await t.gw.store.flush();
});
afterAll(async () => t?.close());

const get = (url: string, s: Session) => t.gw.app.inject({ method: 'GET', url, headers: { cookie: s.cookie } });
const post = (url: string, s: Session, fields: Record<string, string>, csrf = true) =>
  t.gw.app.inject({
    method: 'POST',
    url,
    headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form(csrf ? { _csrf: s.csrf, ...fields } : fields),
  });

describe('roles', () => {
  it('lets a viewer see the dashboard but not act on models', async () => {
    const page = await get('/admin', sessions.viewer);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('/admin/actions/load');
    expect((await post('/admin/actions/load', sessions.viewer, { model: 'tiny' })).statusCode).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('keeps tokens and users to admins, and their nav links from the others', async () => {
    for (const role of ['viewer', 'operator'] as const) {
      for (const url of ['/admin/tokens', '/admin/users'])
        expect((await get(url, sessions[role])).statusCode).toBe(403);
      const page = await get('/admin', sessions[role]);
      expect(page.body).not.toContain('href="/admin/users"');
      expect(page.body).not.toContain('href="/admin/tokens"');
    }
    expect((await get('/admin/users', sessions.admin)).statusCode).toBe(200);
    expect((await get('/admin', sessions.admin)).body).toContain('href="/admin/tokens"');
  });

  it('only an admin may reload the config, and only an admin sees delete on the pull page', async () => {
    expect((await post('/admin/config/reload', sessions.operator, {})).statusCode).toBe(403);
    expect((await get('/admin/pull', sessions.operator)).body).not.toContain('data-delete=');
    expect((await get('/admin/pull', sessions.viewer)).statusCode).toBe(403);
  });
});

describe('tokens and users', () => {
  it('creates a token (post/redirect/get), shows its secret once, escapes its name, and revokes it', async () => {
    const created = await post('/admin/tokens', sessions.admin, {
      name: '<img src=x onerror=alert(1)>',
      role: 'viewer',
    });
    // A redirect: reloading the page that follows cannot create a second token.
    expect(created.statusCode).toBe(303);
    expect(created.headers.location).toBe('/admin/tokens');
    expect(created.body).not.toMatch(/corral_/);
    const shown = await get('/admin/tokens', sessions.admin);
    const secret = /value="(corral_[\w-]{43,})"/.exec(shown.body)?.[1];
    expect(secret).toBeDefined();
    expect(shown.body).not.toContain('<img src=x');
    expect(shown.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    // Once: the reload shows the list, without the secret and without a new token.
    const before = (await t.gw.store.apiTokens.list()).length;
    const list = await get('/admin/tokens', sessions.admin);
    expect(list.body).not.toContain(secret);
    expect(await t.gw.store.apiTokens.list()).toHaveLength(before);
    const id = (await t.gw.store.apiTokens.list()).find((x) => x.name.startsWith('<img'))!.id;
    // The list names the token by id and the first characters of its secret.
    expect(list.body).toMatch(new RegExp(`data-token-id="${id}"[\\s\\S]*?<code>${secret!.slice(0, 13)}…</code>`));
    expect((await post('/admin/tokens/revoke', sessions.admin, { id: String(id) })).statusCode).toBe(303);
    expect((await t.gw.store.apiTokens.findById(id))!.revoked_at).not.toBeNull();
    const audit = await t.gw.store.auditLog.recent({ action: 'token.revoke' });
    expect(audit[0]).toMatchObject({ actor: 'admin', target: String(id), outcome: 'success' });
  });

  it('refuses a create without CSRF', async () => {
    const before = (await t.gw.store.apiTokens.list()).length;
    expect((await post('/admin/tokens', sessions.admin, { name: 'x', role: 'viewer' }, false)).statusCode).toBe(403);
    expect(await t.gw.store.apiTokens.list()).toHaveLength(before);
  });

  it('lets an admin add a user, change a role and disable them', async () => {
    expect(
      (await post('/admin/users/create', sessions.admin, { username: 'ann', password: 'longenough', role: 'viewer' }))
        .statusCode,
    ).toBe(303);
    const short = await post('/admin/users/create', sessions.admin, {
      username: 'bob',
      password: 'short',
      role: 'viewer',
    });
    expect(short.statusCode).toBe(400);
    expect(short.body).toContain('at least 8 characters');
    expect((await post('/admin/users/role', sessions.admin, { id: 'ann', role: 'operator' })).statusCode).toBe(303);
    expect((await post('/admin/users/disable', sessions.admin, { id: 'ann' })).statusCode).toBe(303);
    expect(await t.gw.store.users.findByUsername('ann')).toMatchObject({ role: 'operator', disabled: 1 });
    expect(await t.gw.store.users.findByUsername('bob')).toBeUndefined();
  });
});

describe('activity', () => {
  it('lists recent requests (escaped) and draws the charts as inline SVG', async () => {
    const res = await get('/admin/activity', sessions.viewer);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('&lt;b&gt;token&lt;/b&gt;');
    expect(res.body).toContain('55.5');
    expect(res.body.match(/<svg /g)).toHaveLength(3);
    expect(res.body).toMatch(/<polyline class="series-all" points="[\d.,\s]+"/);
    const model = await get('/admin/model?name=tiny', sessions.viewer);
    expect(model.body).toContain('12 ms');
  });
});
