import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { Unauthorized } from '../errors.js';
import type { Store } from '../store/store.js';
import { clearedSessionCookie, readSessionCookie } from './cookies.js';
import { presentedCredential } from './credentials.js';
import type { Principal } from './principal.js';
import type { SessionManager } from './sessions.js';
import { checkApiToken } from './tokens.js';

/** The reply was already answered (a redirect to the login page). */
export const ANSWERED: unique symbol = Symbol('answered');

export type AuthAudit = (
  request: FastifyRequest,
  actor: string,
  action: string,
  outcome: 'failure' | 'denied',
  detail?: string,
) => Promise<void>;

export function pathOf(url: string) {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export const isAdminPath = (path: string) => path === '/admin' || path.startsWith('/admin/');

const wantsHtml = (request: FastifyRequest) =>
  (request.method === 'GET' || request.method === 'HEAD') &&
  !request.headers['hx-request'] &&
  (request.headers.accept ?? '').includes('text/html');

/** Admin pages send browsers to the login form; everything else gets a 401. */
function needLogin(
  request: FastifyRequest,
  reply: FastifyReply,
  message: string,
  headers: Record<string, string> = {},
): typeof ANSWERED {
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
}

export interface ResolverDeps {
  store: Store;
  mode: Config['auth']['mode'];
  sessions: SessionManager;
  now: () => number;
  audit: AuthAudit;
  isSecure(request: FastifyRequest): boolean;
}

/**
 * Who is asking: a Corral API token (checked, even on public routes: fail closed), else a session
 * cookie, else nobody, which the mode turns into an open or loopback principal or a 401. A
 * placeholder key ("ollama", "sk-...") is no credential and is ignored where none is needed.
 */
export function createPrincipalResolver(deps: ResolverDeps) {
  const { store, sessions, now, audit } = deps;

  async function tokenPrincipal(request: FastifyRequest, secret: string): Promise<Principal> {
    const check = await checkApiToken(store, secret, now());
    if (!check.ok) {
      await audit(request, check.row ? `token:${check.row.name}` : 'unknown', 'auth.token', 'failure', check.reason);
      throw Object.assign(new Unauthorized(`invalid API token (${check.reason})`), {
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    const row = check.row;
    store.apiTokens.touch(row.id, now());
    const models = row.models === null ? null : (JSON.parse(row.models) as string[]);
    return { kind: 'token', role: row.role, tokenId: row.id, name: row.name, models, tokensPerDay: row.tpd };
  }

  async function sessionPrincipal(request: FastifyRequest, reply: FastifyReply, cookie: string, publicRoute: boolean) {
    const check = await sessions.verify(cookie);
    if (check.ok) {
      request.authSession = { id: check.sessionId, csrfToken: check.csrfToken };
      const u = check.user;
      return { kind: 'user', role: u.role, userId: u.id, name: u.username, models: null } satisfies Principal;
    }
    if (check.reason === 'invalid') await audit(request, 'unknown', 'auth.session', 'failure', 'bad signature');
    const clear = { 'set-cookie': clearedSessionCookie(deps.isSecure(request)) };
    // The login and setup pages must stay reachable with a stale cookie, or the browser is stuck.
    if (publicRoute && isAdminPath(pathOf(request.url))) {
      reply.header('set-cookie', clear['set-cookie']);
      return null;
    }
    return needLogin(request, reply, `session ${check.reason}, please log in again`, clear);
  }

  return async function resolve(
    request: FastifyRequest,
    reply: FastifyReply,
    publicRoute: boolean,
  ): Promise<Principal | null | typeof ANSWERED> {
    const admin = isAdminPath(pathOf(request.url));
    const presented = presentedCredential(request.headers);
    if (presented.kind === 'corral') {
      const principal = await tokenPrincipal(request, presented.secret);
      if (admin && !publicRoute) return needLogin(request, reply, 'the admin UI requires a login, not an API token');
      return principal;
    }
    const cookie = readSessionCookie(request);
    if (cookie !== undefined) return sessionPrincipal(request, reply, cookie, publicRoute);
    if (admin && !publicRoute) return needLogin(request, reply, 'login required');
    if (deps.mode === 'off') return { kind: 'open', role: 'admin', name: 'open', models: null };
    if (deps.mode === 'loopback-open' && request.clientLocal) {
      return { kind: 'anonymous-loopback', role: 'admin', name: 'loopback', models: null };
    }
    if (publicRoute) return null;
    if (presented.kind === 'foreign') {
      await audit(request, 'unknown', 'auth.token', 'failure', 'malformed');
      return needLogin(request, reply, 'invalid API token (malformed): send a Corral token (corral_...)');
    }
    return needLogin(request, reply, 'missing API token (send "Authorization: Bearer <token>")');
  };
}
