import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form, loginAs, type Session } from './helpers.js';

const fixtures = inject('fixtures');
let t: TestGateway;
let admin: Session;
const HTML = { accept: 'text/html,application/xhtml+xml' };

beforeAll(async () => {
  t = await startGateway({ models: { tiny: { path: fixtures.models.chat } } });
  admin = await loginAs(t, 'admin');
});
afterAll(async () => t?.close());

const get = (url: string, headers: Record<string, string> = {}) => t.gw.app.inject({ method: 'GET', url, headers });

describe('the login page', () => {
  it('shows a logged-out visitor neither the menu nor the loopback principal', async () => {
    // From loopback in loopback-open mode the API treats this caller as an admin; the page must not.
    const res = await get('/admin/login', HTML);
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('loopback (admin)');
    expect(res.body).not.toMatch(/<nav[\s\S]*href="\/admin\/(tokens|activity|config)"/);
    expect(res.body).not.toContain('action="/admin/logout"');
    expect(res.body).toContain('action="/admin/login"');
  });

  it('sends someone already logged in on to the dashboard', async () => {
    const res = await get('/admin/login', { ...HTML, cookie: admin.cookie });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin');
  });
});

describe('errors', () => {
  it('are HTML pages in the layout for a browser, with the status the API would send', async () => {
    const missing = await get('/admin/model?name=nope', { ...HTML, cookie: admin.cookie });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/text\/html/);
    expect(missing.body).toMatch(/<h1>Not found<\/h1>/);
    expect(missing.body).toContain('there is no model &quot;nope&quot;');
    expect(missing.body).toContain('admin (admin)');
    expect(missing.headers['content-security-policy']).toContain("script-src 'self'");

    const page = await get('/admin/no-such-page', { ...HTML, cookie: admin.cookie });
    expect(page.statusCode).toBe(404);
    expect(page.body).toContain('there is no admin page at /admin/no-such-page');

    const viewer = await loginAs(t, 'viewer');
    const forbidden = await get('/admin/tokens', { ...HTML, cookie: viewer.cookie });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.body).toMatch(/<h1>Not allowed<\/h1>[\s\S]*needs the admin role/);

    // A form posted without its CSRF token.
    const csrf = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/tokens',
      headers: { ...HTML, cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ name: 'x', role: 'viewer' }),
    });
    expect(csrf.statusCode).toBe(403);
    expect(csrf.body).toMatch(/<h1>Not allowed<\/h1>[\s\S]*CSRF/);

    // A form posted after the session ended: log in again.
    const expired = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ model: 'tiny' }),
    });
    expect(expired.statusCode).toBe(401);
    expect(expired.body).toMatch(/<h1>Please log in<\/h1>[\s\S]*href="\/admin\/login"/);
    expect(expired.body).not.toContain('loopback (admin)');
  });

  it('stay JSON for scripts, HTMX and every API route', async () => {
    const script = await get('/admin/model?name=nope', { cookie: admin.cookie, accept: 'application/json' });
    expect(script.statusCode).toBe(404);
    expect(script.json()).toEqual({ error: 'there is no model "nope"' });
    const htmx = await get('/admin/model?name=nope', { ...HTML, cookie: admin.cookie, 'hx-request': 'true' });
    expect(htmx.json()).toEqual({ error: 'there is no model "nope"' });
    const api = await get('/api/nope', HTML);
    expect(api.statusCode).toBe(404);
    expect(api.json()).toEqual({ error: 'GET /api/nope not found' });
    const show = await t.gw.app.inject({ method: 'POST', url: '/api/show', headers: HTML, payload: { model: 'x' } });
    expect(show.statusCode).toBe(404);
    expect(show.headers['content-type']).toMatch(/application\/json/);
  });
});

describe('config reload banner and the Config page', () => {
  it('shows every problem of a rejected reload (file:line) on every page until a reload succeeds', async () => {
    const good = await readFile(t.configFile, 'utf8');
    // A type error, an unknown key and a bad duration, on three lines: all reported, in line order.
    await writeFile(
      t.configFile,
      `${good}\nscheduler:\n  max_loaded_models: many\nbogus_key: 1\nserver:\n  drain_timeout: soon\n`,
    );
    const state = await t.gw.reload();
    expect(state.ok).toBe(false);
    for (const url of ['/admin', '/admin/activity', '/admin/system']) {
      const res = await get(url, { ...HTML, cookie: admin.cookie });
      expect(res.body, url).toContain('data-testid="config-banner"');
      const problems = [...res.body.matchAll(/<li><code>([^<]*)<\/code><\/li>/g)].map((m) => m[1]);
      expect(problems, url).toEqual([
        expect.stringMatching(/corral\.yaml:\d+: scheduler\.max_loaded_models: Expected integer/),
        expect.stringMatching(/corral\.yaml:\d+: bogus_key: Unexpected property/),
        expect.stringMatching(/corral\.yaml:\d+: server\.drain_timeout: invalid duration &quot;soon&quot;/),
      ]);
      const lines = problems.map((p) => Number(/corral\.yaml:(\d+):/.exec(p!)?.[1]));
      expect(lines).toEqual([...lines].sort((a, b) => a - b));
    }
    // Nobody logged out learns about the config file.
    expect((await get('/admin/login', HTML)).body).not.toContain('config-banner');
    await writeFile(t.configFile, good);
    expect((await t.gw.reload()).ok).toBe(true);
    expect((await get('/admin', { ...HTML, cookie: admin.cookie })).body).not.toContain('config-banner');
  });

  it('shows the address Corral really listens on, and says when the file says otherwise', async () => {
    const port = new URL(t.url).port;
    const res = await get('/admin/config', { ...HTML, cookie: admin.cookie });
    expect(res.body).toContain(`data-testid="listen-url">http://127.0.0.1:${port}</code>`);
    // The test config leaves server.port at its default; the listener was given port 0.
    expect(res.body).toMatch(/The file says <code>server\.port: 11434<\/code>/);
    const config = parse(await readFile(t.configFile, 'utf8')) as Record<string, unknown>;
    await writeFile(t.configFile, stringify({ ...config, server: { port: Number(port) } }));
    expect((await t.gw.reload()).ok).toBe(true);
    const same = await get('/admin/config', { ...HTML, cookie: admin.cookie });
    expect(same.body).not.toMatch(/The file says/);
  });
});
