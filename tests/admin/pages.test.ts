import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { form, login, loginAs, waitFor, type Session } from './helpers.js';

let t: TestGateway;
/** Every test runs as a logged-in admin unless it says otherwise. */
let admin: Session;
const fixtures = inject('fixtures');
const EVIL = '<script>alert(1)</script>';

beforeAll(async () => {
  t = await startGateway({
    models: {
      tiny: { path: fixtures.models.chat },
      [EVIL]: { path: fixtures.models.chat2 },
      broken: { path: fixtures.models.broken },
    },
  });
  admin = await loginAs(t, 'admin');
});
afterAll(async () => t?.close());

const form_headers = (s: { cookie: string }) => ({
  cookie: s.cookie,
  'content-type': 'application/x-www-form-urlencoded',
});
/** A GET as the logged-in admin. */
const get = (url: string, s: Session = admin) => t.gw.app.inject({ method: 'GET', url, headers: { cookie: s.cookie } });

describe('admin pages', () => {
  it('sends an anonymous browser to the login page, and answers anything else with 401', async () => {
    const anon = await t.gw.app.inject({ method: 'GET', url: '/admin', headers: { accept: 'text/html' } });
    expect(anon.statusCode).toBe(302);
    expect(anon.headers.location).toBe('/admin/login');
    expect((await t.gw.app.inject({ method: 'GET', url: '/admin/fragments/models' })).statusCode).toBe(401);
    const post = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ model: 'tiny' }),
    });
    expect(post.statusCode).toBe(401);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('renders the dashboard with security headers and every model', async () => {
    const res = await get('/admin');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('admin (admin)');
    expect(res.headers['content-type']).toMatch(/text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.body).toContain('tiny:latest');
    expect(res.body).toContain('/admin/assets/htmx.min.js');
    expect(res.body).not.toMatch(/<script>(?!<\/script>)/);
  });

  it('escapes a model name like <script> everywhere it appears', async () => {
    const pages = [
      '/admin',
      '/admin/fragments/models',
      '/admin/playground',
      '/admin/pull',
      `/admin/model?name=${encodeURIComponent(`${EVIL}:latest`)}`,
    ];
    for (const url of pages) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toContain(EVIL);
      expect(res.body, url).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
  });

  it('serves htmx, the stylesheet and the page script locally', async () => {
    for (const [url, type] of [
      ['/admin/assets/htmx.min.js', /javascript/],
      ['/admin/assets/admin.css', /css/],
      ['/admin/assets/admin.js', /javascript/],
    ] as const) {
      const res = await t.gw.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(type);
    }
  });

  it('renders the login form, and refuses a login posted from another origin', async () => {
    const res = await t.gw.app.inject({ method: 'GET', url: '/admin/login?error=invalid' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/<form method="post" action="\/admin\/login"/);
    expect(res.body).toContain('Wrong username or password');
    // Login CSRF: a cross-site form would log the victim into the attacker's account.
    const cross = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/login',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ username: 'admin', password: 'correct horse battery' }),
    });
    expect(cross.statusCode).toBe(403);
    expect(cross.headers['set-cookie']).toBeUndefined();
  });
});

describe('actions', () => {
  it('rejects a load without a CSRF token, or with a token that does not match the cookie', async () => {
    const s = await login(t.gw.app, 'admin');
    const none = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: form_headers(s),
      payload: form({ model: 'tiny' }),
    });
    expect(none.statusCode).toBe(403);
    // Another session of the same user has its own token.
    const other = await login(t.gw.app, 'admin');
    const wrong = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: form_headers(s),
      payload: form({ model: 'tiny', _csrf: other.csrf }),
    });
    expect(wrong.statusCode).toBe(403);
    // A planted (pre-login style) CSRF cookie with a matching field does not stand in for the session's token.
    const forged = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: { ...form_headers(s), cookie: `${s.cookie}; corral_admin_csrf=abc.def` },
      payload: form({ model: 'tiny', _csrf: 'abc.def' }),
    });
    expect(forged.statusCode).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('loads and unloads a model with a valid token (form post redirects, HTMX gets the fragment)', async () => {
    const s = admin;
    const res = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: form_headers(s),
      payload: form({ model: 'tiny', _csrf: s.csrf }),
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin');
    await waitFor(() => t.gw.scheduler.loaded().some((l) => l.name === 'tiny:latest' && l.runner.state === 'ready'));
    const page = await get('/admin/model?name=tiny');
    expect(page.body).toMatch(/-m \S+\.gguf --alias tiny:latest/);
    const un = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/unload',
      headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' },
      payload: form({ model: 'tiny', _csrf: s.csrf }),
    });
    expect(un.statusCode).toBe(200);
    expect(un.body).toMatch(/^<div id="models"/);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
  });

  it('shows a failed load with its reason', async () => {
    const s = admin;
    await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: form_headers(s),
      payload: form({ model: 'broken', _csrf: s.csrf }),
    });
    await waitFor(async () => (await get('/admin/fragments/models')).body.includes('state-failed'));
    const body = (await get('/admin/fragments/models')).body;
    // The line that explains the exit (llama-server's own error, not the "failed to load model" echoes
    // printed after it) and how the process ended.
    const reason = /<tr data-model="broken:latest">[\s\S]*?class="reason">([^<]*)</.exec(body)?.[1];
    expect(reason).toMatch(
      /^failed to load: llama_model_load: error loading model: tensor .*output\.weight.* data is not within the file bounds.* \(exit code 1\)$/,
    );
  });

  it('shows a model that failed to load for an API request as failed, with its reason', async () => {
    await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/unload',
      headers: form_headers(admin),
      payload: form({ model: 'broken', _csrf: admin.csrf }),
    });
    expect((await get('/admin/fragments/models')).body).not.toMatch(
      /<tr data-model="broken:latest">[\s\S]*?state-failed/,
    );
    const res = await fetch(`${t.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'broken', prompt: 'x' }),
    });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(/error loading model: .*\(exit code 1\)/);
    const body = (await get('/admin/fragments/models')).body;
    expect(body).toMatch(
      /<tr data-model="broken:latest">[\s\S]*?state-failed[\s\S]*?class="reason">failed to load: llama_model_load: error loading model/,
    );
  });

  it("streams a model's log file over SSE: its tail, resumable by Last-Event-ID, then what a new run appends", async () => {
    // tiny was loaded and unloaded above, so its log file exists and no llama-server is running.
    const open = async (headers: Record<string, string> = {}) => {
      const ctrl = new AbortController();
      const res = await fetch(`${t.url}/admin/model/logs?name=tiny`, {
        signal: ctrl.signal,
        headers: { cookie: admin.cookie, ...headers },
      });
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      type Event = { id: number; data: string };
      /** Reads until the log events so far satisfy `done` (or one matches a pattern); returns them. */
      const until = async (done: RegExp | ((events: Event[]) => boolean)) => {
        const test = done instanceof RegExp ? (es: Event[]) => es.some((e) => done.test(e.data)) : done;
        const events = () =>
          [...text.matchAll(/event: log\nid: (\d+)\ndata: (.*)\n\n/g)].map((m) => ({ id: Number(m[1]), data: m[2]! }));
        while (!test(events())) text += decoder.decode((await reader.read()).value, { stream: true });
        return events();
      };
      return { until, close: () => ctrl.abort() };
    };
    const first = await open();
    const tail = await first.until(/starting .*llama-server/);
    first.close();
    const start = tail.find((e) => /starting .*llama-server/.test(e.data))!;
    // Resuming after the start line begins with the line after it.
    const resumed = await open({ 'last-event-id': String(start.id) });
    const next = tail[tail.indexOf(start) + 1]!;
    expect((await resumed.until(/./))[0]).toEqual(next);
    // A new run of the model appends to the same file, and the open stream follows it.
    await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/load',
      headers: form_headers(admin),
      payload: form({ model: 'tiny', _csrf: admin.csrf }),
    });
    const startsAt = (es: { data: string }[]) => es.findIndex((e) => /starting .*llama-server/.test(e.data));
    const live = await resumed.until(
      (es) => startsAt(es) !== -1 && es.slice(startsAt(es)).some((e) => /listening on /.test(e.data)),
    );
    resumed.close();
    expect(live[startsAt(live)]!.id).toBeGreaterThan(start.id);
    expect(live.map((e) => e.id)).toEqual([...live.map((e) => e.id)].sort((a, b) => a - b));
    await t.gw.scheduler.unload('tiny:latest');
  });

  it('accepts the token in the x-csrf-token header (HTMX and fetch)', async () => {
    const s = admin;
    const res = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/actions/unload',
      headers: { ...form_headers(s), 'x-csrf-token': s.csrf },
      payload: form({ model: 'tiny' }),
    });
    expect(res.statusCode).toBe(303);
  });
});

describe('config, system, accounts', () => {
  it('shows the YAML and reports a rejected reload with file:line', async () => {
    const page = await get('/admin/config');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('ctx_size: 512');
    const s = admin;
    const ok = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/config/reload',
      headers: { ...form_headers(s), 'hx-request': 'true' },
      payload: form({ _csrf: s.csrf }),
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('Applied');
    await writeFile(t.configFile, 'defaults:\n  ctx_size: lots\n');
    const bad = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/config/reload',
      headers: form_headers(s),
      payload: form({ _csrf: s.csrf }),
    });
    expect(bad.statusCode).toBe(303);
    const after = await get('/admin/config');
    expect(after.body).toContain('Rejected');
    expect(after.body).toMatch(/corral\.yaml:2: defaults\.ctx_size/);
  });

  it('shows the system page with the llama-server binary and version', async () => {
    const res = await get('/admin/system');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(fixtures.llamaServer);
    expect(res.body).toContain(join(t.dir, 'data'));
    expect(res.body).toMatch(/data-testid="llama-version">[^<]*\d/);
    // Which backend it computes on (the fixture's binary lists no GPU device).
    expect(res.body).toContain('data-testid="llama-backend">the CPU only<');
  });

  it('uses the real accounts store and request log, with the operator kept out of Tokens and Users', async () => {
    for (const url of ['/admin/tokens', '/admin/users']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).not.toContain('accounts store is not available');
    }
    expect((await get('/admin/users')).body).toMatch(/<th scope="row">admin<\/th>/);
    const activity = await get('/admin/activity');
    expect(activity.statusCode).toBe(200);
    expect(activity.body).not.toContain('request log is not available');
    const operator = await loginAs(t, 'operator');
    expect((await get('/admin/tokens', operator)).statusCode).toBe(403);
    expect((await get('/admin/users', operator)).statusCode).toBe(403);
  });

  it('an admin disables a user from the Users page: their session ends and their login is refused', async () => {
    const victim = await loginAs(t, 'viewer', 'vic');
    expect((await get('/admin', victim)).statusCode).toBe(200);
    const users = await get('/admin/users');
    expect(users.body).toContain('action="/admin/users/disable"');
    const res = await t.gw.app.inject({
      method: 'POST',
      url: '/admin/users/disable',
      headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: admin.csrf, id: 'vic' }),
    });
    expect(res.statusCode).toBeLessThan(400);
    expect((await get('/admin', victim)).statusCode).not.toBe(200);
    await expect(login(t.gw.app, 'vic')).rejects.toThrow();
    expect((await get('/admin/users')).body).toMatch(/vic[\s\S]*?disabled/);
  });
});
