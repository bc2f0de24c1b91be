import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../../src/config/schema.js';
import { openDatabase, type SqliteStore } from '../../src/store/database.js';
import type { Store } from '../../src/store/store.js';
import { authPlugin } from '../../src/auth/plugin.js';
import { registerAuthRoutes } from '../../src/auth/routes.js';
import { createPasswords } from '../../src/auth/passwords.js';
import { createLoginThrottle, type LoginThrottle } from '../../src/auth/throttle.js';
import { assertModelAllowed } from '../../src/auth/principal.js';
import { ROUTE_RULES, type RouteRule } from '../../src/auth/roles.js';
import { edgePlugin } from '../../src/edge/plugin.js';

/** Low bcrypt cost: cost 12 is checked once in its own test. */
export const passwords = createPasswords(4);

export function tempStore(): { store: SqliteStore; dir: string; path: string; cleanup(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'corral-auth-'));
  const path = join(dir, 'data', 'corral.db');
  const store = openDatabase(path);
  return {
    store,
    dir,
    path,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function authConfig(overrides: Partial<Config['auth']> = {}): Config['auth'] {
  return {
    mode: 'loopback-open',
    force_insecure: false,
    trusted_proxies: [],
    session_idle: '1h',
    session_absolute: '1d',
    ...overrides,
  };
}

export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function clock(start = Date.parse('2025-06-01T12:00:00Z')): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** The real route table plus the stand-in routes below that Corral itself does not have. */
export const TEST_RULES: Record<string, RouteRule> = {
  ...ROUTE_RULES,
  'POST /admin/users': { access: 'admin', what: 'test' },
  'POST /admin/models/unload': { access: 'operator', what: 'test' },
};

/** An app with the auth plugin, login routes and dummy routes covering each kind of endpoint. */
export async function buildTestApp(
  store: Store,
  options: {
    config?: Partial<Config['auth']>;
    now?: () => number;
    throttle?: LoginThrottle;
    routes?: (app: FastifyInstance) => void;
    rules?: Record<string, RouteRule>;
  } = {},
): Promise<FastifyInstance> {
  const app = Fastify();
  const now = options.now ?? Date.now;
  // Stand-in for the lead's global handler: Ollama shape on /api, OpenAI shape on /v1.
  app.setErrorHandler(
    (
      err: Error & { status?: number; statusCode?: number; headers?: Record<string, string>; type?: string },
      request,
      reply,
    ) => {
      const status = err.status ?? err.statusCode ?? 500;
      reply.code(status).headers(err.headers ?? {});
      if (request.url.startsWith('/v1/'))
        return reply.send({ error: { message: err.message, type: err.type, code: null } });
      return reply.send({ error: err.message });
    },
  );
  const config = authConfig(options.config);
  await app.register(edgePlugin, {
    trustedProxies: config.trusted_proxies,
    allowedOrigins: [],
    allowedHosts: [],
    bindHost: '127.0.0.1',
    authMode: config.mode,
  });
  await app.register(authPlugin, { store, config, now, rules: options.rules ?? TEST_RULES });
  await registerAuthRoutes(app, { store, passwords, now, throttle: options.throttle ?? createLoginThrottle({ now }) });

  const ok = async () => ({ ok: true });
  app.get('/', async () => 'Ollama is running');
  app.get('/api/version', async () => ({ version: '0.12.6' }));
  app.get('/api/tags', ok);
  app.post('/api/chat', async (request) => {
    const model = String((request.body as { model?: string }).model);
    assertModelAllowed(request.principal, model);
    app.corralAuth.recordTokenUsage(request.principal, 10);
    return { model, principal: request.principal };
  });
  app.post('/v1/chat/completions', async (request) => {
    assertModelAllowed(request.principal, String((request.body as { model?: string }).model));
    return { ok: true };
  });
  app.post('/api/pull', ok);
  app.delete('/api/delete', async (request) => {
    request.auditTarget = 'some-model';
    return { ok: true };
  });
  app.get('/admin', async (request) => ({ admin: request.principal?.name }));
  app.get('/admin/login', async () => 'login page');
  app.post('/admin/users', ok);
  app.post('/admin/models/unload', ok);
  options.routes?.(app);
  await app.ready();
  return app;
}

/** Logs in through the JSON variant of the form and returns the cookie header and CSRF token. */
export async function login(
  app: FastifyInstance,
  username: string,
  password: string,
  headers: Record<string, string> = {},
) {
  const res = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { accept: 'application/json', ...headers },
    payload: { username, password },
  });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, setCookie, csrfToken: (res.json() as { csrfToken: string }).csrfToken };
}
