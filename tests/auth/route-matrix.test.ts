import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { roleAllows, type Role } from '../../src/auth/principal.js';
import { rolesMarkdown } from '../tools/roles-reference.js';
import { createApiToken } from '../../src/auth/tokens.js';
import { loginAs, type Session } from '../admin/helpers.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];
const fixtures = inject('fixtures');
/** Values for route parameters, so every route can be called. */
const PARAMS: Record<string, string> = { ':id': 'tiny', ':op': 'no-such-op', ':name': 'admin.css' };

let t: TestGateway;
const tokens = {} as Record<Role, string>;
const sessions = {} as Record<Role, Session>;

beforeAll(async () => {
  t = await startGateway({ auth: { mode: 'required' }, models: { tiny: { path: fixtures.models.chat } } });
  for (const role of ROLES) {
    tokens[role] = (await createApiToken(t.gw.store, { name: `t-${role}`, role })).secret;
    sessions[role] = await loginAs(t, role);
  }
});
afterAll(async () => t?.close());

/** Sends one request over HTTP and returns its status without reading the body (SSE feeds never end). */
async function statusOf(method: string, url: string, who: Role | 'anonymous'): Promise<number> {
  const admin = url.startsWith('/admin');
  const headers: Record<string, string> = {};
  if (who !== 'anonymous' && admin) {
    // Logging out ends the session: that route gets a session of its own.
    const s = url === '/admin/logout' ? await loginAs(t, who) : sessions[who];
    headers.cookie = s.cookie;
    headers['x-csrf-token'] = s.csrf;
  } else if (who !== 'anonymous') {
    headers.authorization = `Bearer ${tokens[who]}`;
  }
  const body = method === 'GET' || method === 'HEAD' ? undefined : '{}';
  if (body) headers['content-type'] = 'application/json';
  const path = url.replace(/:\w+/g, (p) => PARAMS[p] ?? 'x');
  const res = await fetch(`${t.url}${path}`, { method, headers, body, redirect: 'manual' });
  await res.body?.cancel();
  return res.status;
}

describe('every route × every role, in required mode', () => {
  it('finds the routes in Fastify, each with a rule', () => {
    const routes = t.gw.app.corralAuth.routes();
    expect(routes.length).toBeGreaterThan(40);
    expect(routes.every((r) => r.rule !== undefined)).toBe(true);
  });

  it('answers each caller as the route table says', async () => {
    const wrong: string[] = [];
    for (const { method, url, rule } of t.gw.app.corralAuth.routes()) {
      if (method === 'HEAD') continue; // the GET route's twin
      for (const who of ['anonymous', ...ROLES] as const) {
        const status = await statusOf(method, url, who);
        const denied = status === 401 || status === 403;
        const want =
          rule.access === 'public'
            ? 'allowed'
            : who === 'anonymous'
              ? 401
              : roleAllows(who, rule.access)
                ? 'allowed'
                : 403;
        const ok = want === 'allowed' ? !denied : status === want;
        if (!ok) wrong.push(`${method} ${url} as ${who}: ${status}, expected ${want}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('needs the operator role to unload (keep_alive 0) or pin (negative keep_alive) a model', async () => {
    const call = (role: Role, url: string, body: Record<string, unknown>) =>
      fetch(`${t.url}${url}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[role]}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const keep_alive of [0, '0s', -1, '-1m']) {
      const res = await call('viewer', '/api/generate', { model: 'tiny', prompt: '', keep_alive });
      expect(res.status, String(keep_alive)).toBe(403);
      expect(((await res.json()) as { error: string }).error).toContain('operator');
    }
    const v1 = await call('viewer', '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'x' }],
      keep_alive: 0,
    });
    expect(v1.status).toBe(403);
    expect(t.gw.scheduler.loaded()).toHaveLength(0);
    const pin = await call('operator', '/api/generate', { model: 'tiny', prompt: '', keep_alive: -1 });
    expect(pin.status).toBe(200);
    const unload = await call('operator', '/api/generate', { model: 'tiny', prompt: '', keep_alive: 0 });
    expect(unload.status).toBe(200);
    expect(t.gw.scheduler.loaded().filter((l) => l.runner.state === 'ready')).toHaveLength(0);
  });

  it('keeps docs/roles.md generated from the table (npm run docs)', async () => {
    const doc = await readFile(new URL('../../docs/roles.md', import.meta.url), 'utf8');
    expect(doc).toBe(rolesMarkdown());
  });
});
