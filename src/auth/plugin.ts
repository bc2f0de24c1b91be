import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/duration.js';
import { Forbidden, RateLimited, Unauthorized } from '../errors.js';
import type { Store } from '../store/database.js';
import { dayKey } from '../store/token-usage.js';
import { clearedSessionCookie, readSessionCookie } from './cookies.js';
import { presentedCredential } from './credentials.js';
import { verifyCsrf } from './csrf.js';
import { assertModelAllowed, roleAllows, type Principal, type Role } from './principal.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';
import { ROUTE_RULES, ruleFor, type RouteRule } from './roles.js';
import { createSessionManager, type SessionManager } from './sessions.js';
import { checkApiToken } from './tokens.js';

export interface AuthSessionInfo {
  id: string;
  csrfToken: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking; null only on public routes reached without a credential. */
    principal: Principal | null;
    /** Set when authenticated by the session cookie. */
    authSession: AuthSessionInfo | null;
    /** What an operator/admin action acted on, for the audit log. */
    auditTarget: string | null;
  }
  interface FastifyInstance {
    corralAuth: CorralAuth;
  }
}

export interface CorralAuth {
  sessions: SessionManager;
  /** Counts generated/prompt tokens against an API token's daily budget. */
  recordTokenUsage(principal: Principal | null | undefined, tokens: number): void;
  assertModelAllowed(principal: Principal | null | undefined, model: string): void;
  /** Whether the request came over TLS (directly or via a trusted proxy); decides the cookie's Secure flag. */
  isSecure(request: FastifyRequest): boolean;
  /** Every registered route ("METHOD url") with the rule that guards it. */
  routes(): { key: string; method: string; url: string; rule: RouteRule }[];
}

export interface AuthPluginOptions {
  store: Store;
  config: Config['auth'];
  now?: () => number;
  sessions?: SessionManager;
  rateLimiter?: RateLimiter;
  /** The route table; tests add their own routes to it. */
  rules?: Readonly<Record<string, RouteRule>>;
  /** Config switches named by a rule's `publicIf`. */
  open?: { 'metrics.public'?: boolean };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The reply was already answered (a redirect to the login page). */
const ANSWERED: unique symbol = Symbol('answered');
/** A route Fastify does not know (404) needs what the least route needs. */
const UNKNOWN_ROUTE: RouteRule = { access: 'viewer', what: 'no such route' };

export function recordTokenUsage(
  store: Store,
  principal: Principal | null | undefined,
  tokens: number,
  now = Date.now(),
) {
  if (principal?.kind === 'token' && principal.tokenId !== undefined && tokens > 0) {
    store.tokenUsage.add(principal.tokenId, tokens, now);
  }
}

function pathOf(url: string) {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export const isAdminPath = (path: string) => path === '/admin' || path.startsWith('/admin/');

const wantsHtml = (request: FastifyRequest) =>
  (request.method === 'GET' || request.method === 'HEAD') &&
  !request.headers['hx-request'] &&
  (request.headers.accept ?? '').includes('text/html');

/** keep_alive 0 unloads the model for everyone and a negative one pins it: scheduling, not inference. */
function schedulesModel(body: unknown): boolean {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>).keep_alive : undefined;
  if (typeof value !== 'string' && typeof value !== 'number') return false;
  if (value === '') return false;
  try {
    const ms = parseDuration(value);
    return ms === 0 || ms === Infinity;
  } catch {
    return false; // the route answers 400 for it
  }
}

/**
 * Resolves request.principal on every request and enforces the route's rule from roles.ts: the one
 * role and CSRF check of every route. Registered without encapsulation so the hooks cover every
 * route of the app; needs the edge plugin first (client address).
 */
async function authPluginImpl(app: FastifyInstance, options: AuthPluginOptions) {
  if (!app.hasRequestDecorator('clientLocal')) throw new Error('register the edge plugin before the auth plugin');
  const { store, config } = options;
  const rules = options.rules ?? ROUTE_RULES;
  const now = options.now ?? Date.now;
  const limiter = options.rateLimiter ?? createRateLimiter(now);
  const sessions =
    options.sessions ??
    createSessionManager({
      store,
      idleMs: parseDuration(config.session_idle),
      absoluteMs: parseDuration(config.session_absolute),
      now,
    });
  const isSecure = (request: FastifyRequest) => {
    if ((request.socket as { encrypted?: boolean }).encrypted) return true;
    return request.clientProxied && request.headers['x-forwarded-proto'] === 'https';
  };
  const audit = (
    request: FastifyRequest,
    actor: string,
    action: string,
    outcome: 'failure' | 'denied',
    detail?: string,
  ) =>
    store.auditLog.write(
      { actor, action, outcome, ip: request.clientIp, target: request.url, detail: detail ?? null },
      now(),
    );

  const registered: { key: string; method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      registered.push({ key: `${method} ${route.url}`, method, url: route.url });
  });
  app.addHook('onReady', async () => {
    const missing = registered.filter((r) => !ruleFor(rules, r.method, r.url)).map((r) => r.key);
    if (missing.length) throw new Error(`routes without a rule in src/auth/roles.ts: ${missing.join(', ')}`);
  });

  // Requests that passed the role check; only those count as performed operator/admin actions.
  const authorized = new WeakSet<FastifyRequest>();

  app.decorate('corralAuth', {
    sessions,
    recordTokenUsage: (principal, tokens) => recordTokenUsage(store, principal, tokens, now()),
    assertModelAllowed,
    isSecure,
    routes: () => registered.map((r) => ({ ...r, rule: ruleFor(rules, r.method, r.url)! })),
  } satisfies CorralAuth);
  app.decorateRequest('principal', null);
  app.decorateRequest('authSession', null);
  app.decorateRequest('auditTarget', null);

  const access = (rule: RouteRule): RouteRule['access'] =>
    rule.publicIf && options.open?.[rule.publicIf] ? 'public' : rule.access;

  /** Admin pages send browsers to the login form; everything else gets a 401. */
  const needLogin = (
    request: FastifyRequest,
    reply: FastifyReply,
    message: string,
    headers: Record<string, string> = {},
  ): typeof ANSWERED => {
    const admin = isAdminPath(pathOf(request.url));
    if (admin && wantsHtml(request)) {
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      reply.redirect('/admin/login');
      return ANSWERED;
    }
    const err = new Unauthorized(message);
    err.headers = { ...headers };
    if (admin && request.headers['hx-request']) err.headers['hx-redirect'] = '/admin/login';
    else if (!admin) err.headers['www-authenticate'] = 'Bearer';
    throw err;
  };

  function tokenPrincipal(request: FastifyRequest, secret: string): Principal {
    const check = checkApiToken(store, secret, now());
    if (!check.ok) {
      audit(request, check.row ? `token:${check.row.name}` : 'unknown', 'auth.token', 'failure', check.reason);
      throw Object.assign(new Unauthorized(`invalid API token (${check.reason})`), {
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    const row = check.row;
    store.apiTokens.touch(row.id, now());
    return {
      kind: 'token',
      role: row.role,
      tokenId: row.id,
      name: row.name,
      models: row.models === null ? null : (JSON.parse(row.models) as string[]),
      tokensPerDay: row.tpd,
    };
  }

  async function sessionPrincipal(
    request: FastifyRequest,
    reply: FastifyReply,
    cookie: string,
    publicRoute: boolean,
  ): Promise<Principal | null | typeof ANSWERED> {
    const check = await sessions.verify(cookie);
    if (check.ok) {
      request.authSession = { id: check.sessionId, csrfToken: check.csrfToken };
      const u = check.user;
      return { kind: 'user', role: u.role, userId: u.id, name: u.username, models: null };
    }
    if (check.reason === 'invalid') audit(request, 'unknown', 'auth.session', 'failure', 'bad signature');
    const clear = { 'set-cookie': clearedSessionCookie(isSecure(request)) };
    // The login and setup pages must stay reachable with a stale cookie, or the browser is stuck.
    if (publicRoute && isAdminPath(pathOf(request.url))) {
      reply.header('set-cookie', clear['set-cookie']);
      return null;
    }
    return needLogin(request, reply, `session ${check.reason}, please log in again`, clear);
  }

  async function resolve(
    request: FastifyRequest,
    reply: FastifyReply,
    publicRoute: boolean,
  ): Promise<Principal | null | typeof ANSWERED> {
    const admin = isAdminPath(pathOf(request.url));
    const presented = presentedCredential(request.headers);
    if (presented.kind === 'corral') {
      const principal = tokenPrincipal(request, presented.secret);
      if (admin && !publicRoute) return needLogin(request, reply, 'the admin UI requires a login, not an API token');
      return principal;
    }
    const cookie = readSessionCookie(request);
    if (cookie !== undefined) return sessionPrincipal(request, reply, cookie, publicRoute);
    if (admin && !publicRoute) return needLogin(request, reply, 'login required');
    // A placeholder key ("ollama", "sk-...") is no credential: ignored where none is needed.
    if (config.mode === 'off') return { kind: 'open', role: 'admin', name: 'open', models: null };
    if (config.mode === 'loopback-open' && request.clientLocal) {
      return { kind: 'anonymous-loopback', role: 'admin', name: 'loopback', models: null };
    }
    if (publicRoute) return null;
    if (presented.kind === 'foreign') {
      audit(request, 'unknown', 'auth.token', 'failure', 'malformed');
      return needLogin(request, reply, 'invalid API token (malformed): send a Corral token (corral_...)');
    }
    return needLogin(request, reply, 'missing API token (send "Authorization: Bearer <token>")');
  }

  function enforceLimits(principal: Principal): void {
    if (principal.kind !== 'token' || principal.tokenId === undefined) return;
    const row = store.apiTokens.findById(principal.tokenId);
    if (row?.rpm) {
      const wait = limiter.take(`token:${row.id}`, row.rpm);
      if (wait > 0) throw new RateLimited(`rate limit of ${row.rpm} requests per minute exceeded`, wait);
    }
    if (row?.tpd && store.tokenUsage.get(row.id, now()) >= row.tpd) {
      const t = now();
      const midnight = Date.parse(`${dayKey(t)}T00:00:00Z`) + 86_400_000;
      throw new RateLimited(`daily limit of ${row.tpd} tokens reached`, (midnight - t) / 1000);
    }
  }

  const requireRole = (request: FastifyRequest, principal: Principal, needed: Role, why?: string) => {
    if (roleAllows(principal.role, needed)) return;
    audit(request, principal.name, 'auth.role', 'denied', `needs ${needed}, has ${principal.role}`);
    throw new Forbidden(why ?? `this action needs the ${needed} role`);
  };

  const ruleOf = (request: FastifyRequest) => ruleFor(rules, request.method, request.routeOptions.url) ?? UNKNOWN_ROUTE;

  app.addHook('onRequest', async (request, reply) => {
    const rule = ruleOf(request);
    const needed = access(rule);
    const principal = await resolve(request, reply, needed === 'public');
    if (principal === ANSWERED) return reply;
    request.principal = principal;
    if (needed === 'public' || !principal) return;
    requireRole(request, principal, needed);
    authorized.add(request);
    enforceLimits(principal);
  });

  app.addHook('preHandler', async (request) => {
    const rule = ruleOf(request);
    if (request.authSession && !SAFE_METHODS.has(request.method) && rule.csrf !== false) verifyCsrf(request);
    if (rule.keepAlive && request.principal && schedulesModel(request.body)) {
      const why = 'keep_alive 0 (unload) and a negative keep_alive (pin) need the operator role';
      requireRole(request, request.principal, 'operator', why);
    }
  });

  // After the response: auditing an operator/admin action never delays it.
  app.addHook('onResponse', async (request, reply) => {
    const rule = ruleOf(request);
    const p = request.principal;
    if (!p || rule.access === 'viewer' || rule.access === 'public' || SAFE_METHODS.has(request.method)) return;
    if (!authorized.has(request)) return;
    store.auditLog.write(
      {
        actor: p.name,
        action: rule.audit ?? `${request.method} ${request.routeOptions.url ?? pathOf(request.url)}`,
        target: request.auditTarget,
        outcome: reply.statusCode < 400 ? 'success' : 'failure',
        ip: request.clientIp,
        detail: `${p.kind} status ${reply.statusCode}`,
      },
      now(),
    );
  });
}

// Equivalent of fastify-plugin (not a direct dependency): the hooks and decorators apply to the
// instance that registers the plugin instead of a child context.
(authPluginImpl as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(authPluginImpl as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'corral-auth';

export const authPlugin = authPluginImpl;
