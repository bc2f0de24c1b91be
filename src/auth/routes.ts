import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, Forbidden, Unauthorized, RateLimited } from '../errors.js';
import type { Store } from '../store/store.js';
import { createAccounts, unlockedAt } from './accounts.js';
import { clearedSessionCookie, sessionCookie } from './cookies.js';
import { validatePassword, type Passwords } from './passwords.js';
import { createLoginThrottle, type LoginThrottle } from './throttle.js';
import { sha256Hex } from './tokens.js';
import type { UserRow } from '../store/users.js';

export interface AuthRoutesOptions {
  store: Store;
  passwords: Passwords;
  throttle?: LoginThrottle;
  now?: () => number;
}

const wantsJson = (request: FastifyRequest) => (request.headers.accept ?? '').includes('application/json');

function field(body: unknown, name: string): string {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : '';
}

/** Login, logout and first-admin setup. Needs authPlugin registered first (for sessions and clientIp). */
export async function registerAuthRoutes(app: FastifyInstance, options: AuthRoutesOptions) {
  const { store, passwords } = options;
  const now = options.now ?? Date.now;
  const throttle = options.throttle ?? createLoginThrottle({ now, unlockedAt: (u) => unlockedAt(store, u) });
  const accounts = createAccounts({ store, passwords, now });
  const audit = (
    request: FastifyRequest,
    actor: string,
    action: string,
    outcome: 'success' | 'failure' | 'denied',
    detail?: string,
  ) => store.auditLog.write({ actor, action, outcome, ip: request.clientIp, detail: detail ?? null }, now());
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody);

  async function startSession(request: FastifyRequest, reply: FastifyReply, user: UserRow) {
    const session = await app.corralAuth.sessions.create(user.id, {
      ip: request.clientIp,
      userAgent: request.headers['user-agent'],
    });
    reply.header('set-cookie', sessionCookie(session.token, session.expiresAt, app.corralAuth.isSecure(request)));
    if (wantsJson(request)) return reply.send({ user: user.username, role: user.role, csrfToken: session.csrfToken });
    return reply.redirect('/admin', 303);
  }

  /** Who tried to log in, for the audit log: a name that is no user may be a mistyped password. */
  const actorOf = async (username: string) => {
    if (!username) return 'unknown';
    return (await store.users.findByUsername(username)) ? username : `unknown:${sha256Hex(username).slice(0, 12)}`;
  };

  // Login CSRF: a cross-site form is refused by the edge's Origin check, and SameSite=Lax keeps
  // the session cookie off cross-site requests.
  app.post('/admin/login', async (request, reply) => {
    const username = field(request.body, 'username');
    const password = field(request.body, 'password');
    const wait = await throttle.begin(request.clientIp, username);
    if (wait > 0) {
      await audit(request, await actorOf(username), 'auth.login', 'denied', 'throttled');
      if (wantsJson(request)) throw new RateLimited('too many failed logins, try again later', wait);
      return reply.header('retry-after', String(Math.ceil(wait))).redirect('/admin/login?error=throttled', 303);
    }
    const user = username && password ? await accounts.authenticate(username, password) : null;
    if (!user) {
      await audit(request, await actorOf(username), 'auth.login', 'failure');
      if (wantsJson(request)) throw new Unauthorized('invalid username or password');
      return reply.redirect('/admin/login?error=invalid', 303);
    }
    throttle.succeed(request.clientIp, username);
    await audit(request, user.username, 'auth.login', 'success');
    return startSession(request, reply, user);
  });

  // Requires a session and its CSRF token, both enforced by authPlugin (src/auth/roles.ts).
  app.post('/admin/logout', async (request, reply) => {
    if (request.authSession) await app.corralAuth.sessions.revoke(request.authSession.id);
    await audit(request, request.principal?.name ?? 'unknown', 'auth.logout', 'success');
    reply.header('set-cookie', clearedSessionCookie(app.corralAuth.isSecure(request)));
    if (wantsJson(request)) return reply.send({ ok: true });
    return reply.redirect('/admin/login', 303);
  });

  /** Who is logged in, and the CSRF token the UI's forms and HTMX requests must carry. */
  app.get('/admin/session', async (request) => ({
    user: request.principal?.name,
    role: request.principal?.role,
    csrfToken: request.authSession?.csrfToken,
  }));

  // The one-time URL printed at first start; the token in it is the credential.
  app.post('/admin/setup', async (request, reply) => {
    const token = field(request.body, 'token');
    const username = field(request.body, 'username') || 'admin';
    const password = field(request.body, 'password');
    if (!token) throw new BadRequest('missing setup token');
    // Checked before the token is consumed, so a too-short password does not burn the link.
    const problem = validatePassword(password);
    if (problem) throw new BadRequest(problem);
    if ((await store.users.adminCount()) > 0 || !(await store.setupTokens.consume(sha256Hex(token), now()))) {
      await audit(request, 'unknown', 'auth.setup', 'denied');
      throw new Forbidden('setup link is invalid, used or expired; restart Corral for a new one');
    }
    await accounts.addUser(username, password, 'admin', 'setup');
    await audit(request, username, 'auth.setup', 'success');
    return startSession(request, reply, (await store.users.findByUsername(username))!);
  });
}
