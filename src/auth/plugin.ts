import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/duration.js';
import { Forbidden } from '../errors.js';
import type { Store } from '../store/store.js';
import { verifyCsrf } from './csrf.js';
import { assertModelAllowed, roleAllows, type Principal, type Role } from './principal.js';
import { createOperationLimits, createTokenLimits, type OperationLimits, type RateLimiter } from './rate-limit.js';
import { ANSWERED, type AuthAudit, createPrincipalResolver, pathOf } from './resolve-principal.js';
import { ROUTE_RULES, ruleFor, type RouteRule } from './roles.js';
import { createSessionManager, type SessionManager } from './sessions.js';

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
    /** What the action changed (e.g. a settings diff), appended to the audit entry's detail. */
    auditDetail: string | null;
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
  /** Per-operation limits for non-admins, read per request (hot-reloaded). */
  operationLimits?: () => OperationLimits;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
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

/** keep_alive 0 unloads the model for everyone and a negative one pins it: scheduling, not inference. */
function schedulesModel(body: unknown): 'model.unload' | 'model.pin' | undefined {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>).keep_alive : undefined;
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  if (value === '') return undefined;
  try {
    const ms = parseDuration(value);
    return ms === 0 ? 'model.unload' : ms === Infinity ? 'model.pin' : undefined;
  } catch {
    return undefined; // the route answers 400 for it
  }
}

type RegisteredRoute = ReturnType<CorralAuth['routes']>[number];

/** Every route registered from here on, and a refusal to start while one has no rule. */
function trackRoutes(app: FastifyInstance, rules: Readonly<Record<string, RouteRule>>): () => RegisteredRoute[] {
  const registered: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      const rule = ruleFor(rules, method, route.url);
      registered.push({ key: `${method} ${route.url}`, method, url: route.url, rule: rule! });
    }
  });
  app.addHook('onReady', async () => {
    const missing = registered.filter((r) => !r.rule).map((r) => r.key);
    if (missing.length) throw new Error(`routes without a rule in src/auth/roles.ts: ${missing.join(', ')}`);
  });
  return () => [...registered];
}

/** An operator or admin action that changed something, with its outcome. */
async function auditAction(
  store: Store,
  rule: RouteRule,
  request: FastifyRequest,
  status: number,
  now: number,
): Promise<void> {
  const p = request.principal;
  if (!p || SAFE_METHODS.has(request.method)) return;
  await store.auditLog.write(
    {
      actor: p.name,
      action: rule.audit ?? `${request.method} ${request.routeOptions.url ?? pathOf(request.url)}`,
      target: request.auditTarget,
      outcome: status < 400 ? 'success' : 'failure',
      ip: request.clientIp,
      detail: `${p.kind} status ${status}${request.auditDetail ? `: ${request.auditDetail}` : ''}`,
    },
    now,
  );
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
  const limiter = options.rateLimiter ?? store.rateLimits.limiter(now);
  const enforceLimits = createTokenLimits(store, limiter, now);
  const { operationLimits } = options;
  const enforceOperation = operationLimits ? createOperationLimits(limiter, operationLimits) : undefined;
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
  const audit: AuthAudit = (request, actor, action, outcome, detail) =>
    store.auditLog.write(
      { actor, action, outcome, ip: request.clientIp, target: request.url, detail: detail ?? null },
      now(),
    );

  const routes = trackRoutes(app, rules);

  // Requests that passed the role check; only those count as performed operator/admin actions.
  const authorized = new WeakSet<FastifyRequest>();
  // Inference requests whose keep_alive unloads or pins their model: audited as that action.
  const scheduling = new WeakMap<FastifyRequest, string>();

  app.decorate('corralAuth', {
    sessions,
    recordTokenUsage: (principal, tokens) => recordTokenUsage(store, principal, tokens, now()),
    assertModelAllowed,
    isSecure,
    routes,
  } satisfies CorralAuth);
  app.decorateRequest('principal', null);
  app.decorateRequest('authSession', null);
  app.decorateRequest('auditTarget', null);
  app.decorateRequest('auditDetail', null);

  const access = (rule: RouteRule): RouteRule['access'] =>
    rule.publicIf && options.open?.[rule.publicIf] ? 'public' : rule.access;
  const resolve = createPrincipalResolver({ store, mode: config.mode, sessions, now, audit, isSecure });

  const requireRole = async (request: FastifyRequest, principal: Principal, needed: Role, why?: string) => {
    if (roleAllows(principal.role, needed)) return;
    await audit(request, principal.name, 'auth.role', 'denied', `needs ${needed}, has ${principal.role}`);
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
    await requireRole(request, principal, needed);
    authorized.add(request);
    await enforceLimits(principal);
  });

  app.addHook('preHandler', async (request) => {
    const rule = ruleOf(request);
    if (request.authSession && !SAFE_METHODS.has(request.method) && rule.csrf !== false) verifyCsrf(request);
    const principal = request.principal;
    if (!principal || !authorized.has(request)) return;
    let operation = rule.operation;
    const schedules = rule.keepAlive ? schedulesModel(request.body) : undefined;
    if (schedules) {
      const why = 'keep_alive 0 (unload) and a negative keep_alive (pin) need the operator role';
      await requireRole(request, principal, 'operator', why);
      operation = 'model';
      scheduling.set(request, schedules);
      const model = (request.body as { model?: unknown }).model;
      if (typeof model === 'string') request.auditTarget = model.slice(0, 300);
    }
    if (operation) await enforceOperation?.(principal, operation);
  });

  // After the response: auditing an operator/admin action never delays it.
  app.addHook('onResponse', async (request, reply) => {
    const rule = ruleOf(request);
    if (!authorized.has(request)) return;
    const schedules = scheduling.get(request);
    const audited = schedules ? { ...rule, audit: schedules } : rule;
    if (!schedules && (rule.access === 'viewer' || rule.access === 'public')) return;
    // The response is gone: a record that cannot be written is an error in the log.
    await auditAction(store, audited, request, reply.statusCode, now()).catch((err: unknown) =>
      request.log.error({ err, action: audited.audit }, 'audit entry not written'),
    );
  });
}

// Equivalent of fastify-plugin (not a direct dependency): the hooks and decorators apply to the
// instance that registers the plugin instead of a child context.
(authPluginImpl as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(authPluginImpl as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'corral-auth';

export const authPlugin = authPluginImpl;
