import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/duration.js';
import { Forbidden, RateLimited, Unauthorized } from '../errors.js';
import type { Store } from '../store/database.js';
import { dayKey } from '../store/token-usage.js';
import { clientAddress, createAddressMatcher, isLoopback } from './client-ip.js';
import { clearedSessionCookie, readSessionCookie } from './cookies.js';
import { verifyCsrf } from './csrf.js';
import { assertModelAllowed, roleAllows, type Principal, type Role } from './principal.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';
import { createSessionManager, type SessionManager } from './sessions.js';
import { checkApiToken } from './tokens.js';

export interface RouteAuth {
  /** Least role needed; default viewer. */
  role?: Role;
  /** Needs no credential at all (a presented one is still checked: fail closed). */
  public?: boolean;
  /** Set false only for state-changing routes that cannot carry a CSRF token (e.g. login). */
  csrf?: boolean;
  /** Audit action name for operator/admin routes; default "METHOD /route/url". */
  audit?: string;
}

export interface AuthSessionInfo {
  id: string;
  csrfToken: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** Who is asking; null only on public routes reached without a credential. */
    principal: Principal | null;
    /** Client address after applying trusted_proxies. */
    clientIp: string;
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
}

export interface AuthPluginOptions {
  store: Store;
  config: Config['auth'];
  now?: () => number;
  sessions?: SessionManager;
  rateLimiter?: RateLimiter;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The reply was already answered (a redirect to the login page). */
const ANSWERED: unique symbol = Symbol('answered');

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

const isAdminPath = (path: string) => path === '/admin' || path.startsWith('/admin/');

const wantsHtml = (request: FastifyRequest) =>
  (request.method === 'GET' || request.method === 'HEAD') &&
  !request.headers['hx-request'] &&
  (request.headers.accept ?? '').includes('text/html');

function parseBearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // Any other scheme, or garbage, is a credential we cannot accept: treated as an invalid token.
  return m ? m[1]! : '';
}

/**
 * Resolves request.principal on every request and enforces the route's needs. Registered
 * without encapsulation so the hooks cover every route of the app.
 */
async function authPluginImpl(app: FastifyInstance, options: AuthPluginOptions) {
  const { store, config } = options;
  const now = options.now ?? Date.now;
  const trusted = createAddressMatcher(config.trusted_proxies);
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
    const peer = request.socket.remoteAddress ?? request.ip;
    return trusted(peer) && request.headers['x-forwarded-proto'] === 'https';
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

  // Requests that passed the role check; only those count as performed operator/admin actions.
  const authorized = new WeakSet<FastifyRequest>();

  app.decorate('corralAuth', {
    sessions,
    recordTokenUsage: (principal, tokens) => recordTokenUsage(store, principal, tokens, now()),
    assertModelAllowed,
    isSecure,
  } satisfies CorralAuth);
  app.decorateRequest('principal', null);
  app.decorateRequest('clientIp', '');
  app.decorateRequest('authSession', null);
  app.decorateRequest('auditTarget', null);

  /** Admin pages send browsers to the login form; everything else gets a 401. */
  const needLogin = (
    request: FastifyRequest,
    reply: FastifyReply,
    message: string,
    headers: Record<string, string> = {},
  ): typeof ANSWERED => {
    if (isAdminPath(pathOf(request.url)) && wantsHtml(request)) {
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      reply.redirect('/admin/login');
      return ANSWERED;
    }
    const err = new Unauthorized(message);
    err.headers = { ...headers };
    if (isAdminPath(pathOf(request.url)) && request.headers['hx-request']) err.headers['hx-redirect'] = '/admin/login';
    else if (!isAdminPath(pathOf(request.url))) err.headers['www-authenticate'] = 'Bearer';
    throw err;
  };

  async function resolve(
    request: FastifyRequest,
    reply: FastifyReply,
    route: RouteAuth,
    admin: boolean,
  ): Promise<Principal | null | typeof ANSWERED> {
    const bearer = parseBearer(request.headers.authorization);
    if (bearer !== undefined) {
      const check = checkApiToken(store, bearer, now());
      if (!check.ok) {
        audit(request, check.row ? `token:${check.row.name}` : 'unknown', 'auth.token', 'failure', check.reason);
        throw Object.assign(new Unauthorized(`invalid API token (${check.reason})`), {
          headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
        });
      }
      const row = check.row;
      const principal: Principal = {
        kind: 'token',
        role: row.role,
        tokenId: row.id,
        name: row.name,
        models: row.models === null ? null : (JSON.parse(row.models) as string[]),
        tokensPerDay: row.tpd,
      };
      store.apiTokens.touch(row.id, now());
      if (admin && !route.public) return needLogin(request, reply, 'the admin UI requires a login, not an API token');
      return principal;
    }

    const cookie = readSessionCookie(request);
    if (cookie !== undefined) {
      const check = await sessions.verify(cookie);
      if (check.ok) {
        request.authSession = { id: check.sessionId, csrfToken: check.csrfToken };
        const u = check.user;
        return { kind: 'user', role: u.role, userId: u.id, name: u.username, models: null } satisfies Principal;
      }
      if (check.reason === 'invalid') audit(request, 'unknown', 'auth.session', 'failure', 'bad signature');
      const clear = { 'set-cookie': clearedSessionCookie(isSecure(request)) };
      // The login and setup pages must stay reachable with a stale cookie, or the browser is stuck.
      if (admin && route.public) {
        reply.header('set-cookie', clear['set-cookie']);
        return null;
      }
      return needLogin(request, reply, `session ${check.reason}, please log in again`, clear);
    }

    if (admin && !route.public) return needLogin(request, reply, 'login required');
    if (config.mode === 'off') return { kind: 'open', role: 'admin', name: 'open', models: null } satisfies Principal;
    if (config.mode === 'loopback-open' && isLoopback(request.clientIp)) {
      return { kind: 'anonymous-loopback', role: 'admin', name: 'loopback', models: null } satisfies Principal;
    }
    if (route.public) return null;
    return needLogin(request, reply, 'missing API token (send "Authorization: Bearer <token>")');
  }

  app.addHook('onRequest', async (request, reply) => {
    request.clientIp = clientAddress(
      request.socket.remoteAddress ?? request.ip,
      request.headers['x-forwarded-for'],
      trusted,
    );
    const route: RouteAuth = request.routeOptions.config?.auth ?? {};
    const admin = isAdminPath(pathOf(request.url));
    const principal = await resolve(request, reply, route, admin);
    if (principal === ANSWERED) return reply;
    request.principal = principal;
    if (route.public || !principal) return;

    const needed = route.role ?? 'viewer';
    if (!roleAllows(principal.role, needed)) {
      audit(request, principal.name, 'auth.role', 'denied', `needs ${needed}, has ${principal.role}`);
      throw new Forbidden(`this action needs the ${needed} role`);
    }
    authorized.add(request);
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
  });

  app.addHook('preHandler', async (request) => {
    const route = request.routeOptions.config?.auth;
    if (request.authSession && !SAFE_METHODS.has(request.method) && route?.csrf !== false) verifyCsrf(request);
  });

  // After the response: auditing an operator/admin action never delays it.
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.config?.auth;
    const p = request.principal;
    if (!p || !route?.role || route.role === 'viewer' || SAFE_METHODS.has(request.method)) return;
    if (!authorized.has(request)) return;
    store.auditLog.write(
      {
        actor: p.name,
        action: route.audit ?? `${request.method} ${request.routeOptions.url ?? pathOf(request.url)}`,
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
